"""The adaptive-DNN design problem: z = (a_1 … a_M, θ_12 … θ_{M-1,M}) under an energy or an error budget.

Two forms (thesis eq. 4.1 and 4.2):

* ``form="energy"``: minimise the cascade's error (%) subject to expected energy per image <= E_T (mJ);
* ``form="error"``: minimise expected energy per image (mJ) subject to the error increase over the
  reference network, ΔL = err(cascade) − err(reference), <= ΔL_T (percentage points).

Each network's per-image softmax outputs come from a :class:`NetworkTrainer` (real training, cached in the
store); each stage's per-image cost from :class:`NetworkCosts` (measured by a profiler passed in as a
function, or read from a cost table): the library never imports a profiler. Stages 2..M run on the edge
(``placement="local"``, eq. 4.3) or on the server (``placement="remote"``, eq. 4.4).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.errors import InputError
from hwnas.searchers.adaptive.candidates import STRUCTURAL, NetworkFamily, NetworkTrainer, describe
from hwnas.searchers.adaptive.links import LinkModel
from hwnas.searchers.adaptive.system import (
    StageCost,
    remote_stage_cost,
    single_network,
    sweep_cascade,
)
from hwnas.searchers.space import FloatParam, IntParam, SearchSpace

FORMS = ("energy", "error")
PLACEMENTS = ("local", "remote")
CostFn = Callable[[Mapping[str, Any], Any, tuple[int, ...]], Mapping[str, float]]


class NetworkCosts:
    """Per-image cost of a candidate on the edge and on the server, measured once per config.

    ``edge_cost_fn(config, module, input_shape)`` returns ``latency_ms`` and, where the edge device has a
    power sensor (RAPL, NVML, rails) or an energy cost table, ``energy_mj``; otherwise energy is
    ``edge_power_w × latency`` with the power the user states (``--edge-power-w``), and the result says
    so. ``server_cost_fn`` gives the server's ``latency_ms``; remote stages cost the edge its idle power
    over the server runtime plus τ_comm (eq. 4.4).
    """

    def __init__(
        self,
        build: Callable[[Mapping[str, Any]], Any],
        input_shape: tuple[int, ...],
        edge_cost_fn: CostFn,
        *,
        server_cost_fn: CostFn | None = None,
        edge_power_w: float | None = None,
        idle_power_w: float | None = None,
        link: LinkModel | None = None,
    ) -> None:
        self.build = build
        self.input_shape = tuple(input_shape)
        self.edge_cost_fn = edge_cost_fn
        self.server_cost_fn = server_cost_fn
        self.edge_power_w = edge_power_w
        self.idle_power_w = idle_power_w
        self.link = link
        self.energy_source: str | None = None
        self._edge: dict[str, dict[str, float]] = {}
        self._server: dict[str, float] = {}

    def edge(self, config: Mapping[str, Any]) -> dict[str, float]:
        key = describe(config)
        if key not in self._edge:
            got = dict(self.edge_cost_fn(config, self.build(config), (1, *self.input_shape)))
            if "latency_ms" not in got:
                raise InputError(f"the edge cost function gave {sorted(got)} for {key}; latency_ms is needed")
            if "energy_mj" in got:
                self.energy_source = "measured"
            elif self.edge_power_w is not None:
                got["energy_mj"] = float(self.edge_power_w) * float(got["latency_ms"])
                self.energy_source = f"latency x stated edge power {self.edge_power_w} W"
            else:
                raise InputError(
                    "the edge device measured no energy (no power sensor here)",
                    hint="give --edge-power-w (the device's active power in W) or an energy cost table",
                )
            self._edge[key] = {k: float(v) for k, v in got.items()}
        return self._edge[key]

    def server_ms(self, config: Mapping[str, Any]) -> float:
        key = describe(config)
        if key not in self._server:
            if self.server_cost_fn is None:
                raise InputError("a remote stage needs a server device", hint="give --server-device")
            got = self.server_cost_fn(config, self.build(config), (1, *self.input_shape))
            self._server[key] = float(got["latency_ms"])
        return self._server[key]

    def stage(self, config: Mapping[str, Any], index: int, placement: str) -> StageCost:
        """Cost of network ``config`` as stage ``index`` (0-based) of the cascade."""
        if placement == "local" or index == 0:
            e = self.edge(config)
            return StageCost(e["energy_mj"], e["latency_ms"], "edge")
        if self.idle_power_w is None or self.link is None:
            raise InputError(
                "remote execution needs the edge's idle power and a link model",
                hint="give --idle-power-w (or power.idle_power_mw in the device config) and --link",
            )
        comm = self.link.comm_ms if index == 1 else 0.0
        return remote_stage_cost(self.idle_power_w, self.server_ms(config), comm)

    def with_link(self, link: LinkModel | None) -> NetworkCosts:
        """The same devices and measurements over another link (measurement caches are shared)."""
        other = NetworkCosts(
            self.build,
            self.input_shape,
            self.edge_cost_fn,
            server_cost_fn=self.server_cost_fn,
            edge_power_w=self.edge_power_w,
            idle_power_w=self.idle_power_w,
            link=link,
        )
        other._edge, other._server = self._edge, self._server
        return other

    def summary(self) -> dict[str, Any]:
        return {
            "energy_source": self.energy_source,
            "edge_power_w": self.edge_power_w,
            "idle_power_w": self.idle_power_w,
            "link": self.link.to_dict() if self.link is not None else None,
        }


@dataclass
class DesignPoint:
    """One evaluated design: networks, thresholds, and its metrics on the design and the test split."""

    configs: list[dict[str, Any]]
    thresholds: list[float]
    error_pct: float
    energy_mj: float
    latency_ms: float
    forwarded: float
    test_error_pct: float | None = None
    test_energy_mj: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "networks": [describe(c) for c in self.configs],
            "configs": self.configs,
            "thresholds": self.thresholds,
            "error_pct": self.error_pct,
            "energy_mj": self.energy_mj,
            "latency_ms": self.latency_ms,
            "forwarded_fraction": self.forwarded,
            "test_error_pct": self.test_error_pct,
            "test_energy_mj": self.test_energy_mj,
            **self.info,
        }


def theta_grid(m: int, steps: int) -> list[list[float]]:
    """Every threshold vector on a regular grid of ``steps`` values in [0, 1] per decision."""
    if steps < 2:
        raise InputError(f"a theta grid needs >= 2 steps, got {steps}")
    axis = np.linspace(0.0, 1.0, steps)
    if m == 1:
        return [[]]
    mesh = np.meshgrid(*([axis] * (m - 1)), indexing="ij")
    return np.stack([g.ravel() for g in mesh], axis=1).tolist()


class AdaptiveProblem:
    """z → (objective, constraint) for one form, placement and budget; also the cheap θ sweep."""

    def __init__(
        self,
        trainer: NetworkTrainer,
        costs: NetworkCosts,
        *,
        n_networks: int = 2,
        form: str = "energy",
        budget: float,
        placement: str = "local",
        family: NetworkFamily | None = None,
        pool: Sequence[Mapping[str, Any]] | None = None,
        reference: Mapping[str, Any] | None = None,
        sweep_steps: int | None = None,
        fixed: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        if form not in FORMS:
            raise InputError(f"unknown problem form {form!r}", hint=f"one of {', '.join(FORMS)}")
        if placement not in PLACEMENTS:
            raise InputError(f"unknown placement {placement!r}", hint=f"one of {', '.join(PLACEMENTS)}")
        if n_networks not in (2, 3):
            raise InputError(f"adaptive DNNs here cascade 2 or 3 networks, got {n_networks}")
        # An energy budget must be > 0 mJ; an error-increase budget may be 0 points (no loss allowed).
        lowest_ok = 0.0 if form == "error" else np.nextafter(0.0, 1.0)
        if not (np.isfinite(budget) and budget >= lowest_ok):
            what = ">= 0 points" if form == "error" else "> 0 mJ"
            raise InputError(f"budget must be a finite number {what}, got {budget}")
        self.trainer = trainer
        self.costs = costs
        self.m = n_networks
        self.form = form
        self.budget = float(budget)
        self.placement = placement
        self.family = family or NetworkFamily.scaled(trainer.dd.scale)
        self.pool = [dict(c) for c in pool] if pool else None
        self.reference = dict(reference) if reference else self.family.nominal_large()
        self.sweep_steps = sweep_steps or (101 if n_networks == 2 else 21)
        # Stages whose network is given, not searched (0-based): the thesis's experiments vary CaffeNet
        # (N_1) and θ with VGG-19 (N_2) fixed; the default searches every network.
        self.fixed = {int(k): dict(v) for k, v in (fixed or {}).items()}
        if any(not 0 <= k < n_networks for k in self.fixed) or len(self.fixed) >= n_networks:
            raise InputError(
                f"fixed stages {sorted(self.fixed)} must be some (not all) of 0..{n_networks - 1}"
            )
        self.free = [i for i in range(n_networks) if i not in self.fixed]
        self.space = self._space()
        self._pool_unit: np.ndarray | None = None

    # -- the space ------------------------------------------------------------------------------------
    def _space(self) -> SearchSpace:
        f, k, u = self.family.features, self.family.kernel, self.family.fc_units
        params = []
        for i in [j + 1 for j in self.free]:
            params += [
                IntParam(f"n{i}_conv1_features", *f),
                IntParam(f"n{i}_conv1_kernel", *k),
                IntParam(f"n{i}_conv2_features", *f),
                IntParam(f"n{i}_conv2_kernel", *k),
                IntParam(f"n{i}_fc_units", *u),
            ]
        params += [FloatParam(self.theta_name(i), 0.0, 1.0) for i in range(1, self.m)]
        return SearchSpace.of(params, name=f"adaptive-{self.m}net")

    @staticmethod
    def theta_name(i: int) -> str:
        return f"theta{i}{i + 1}"

    @property
    def objective_name(self) -> str:
        return "error_pct" if self.form == "energy" else "energy_mj"

    @property
    def constraint_name(self) -> str:
        return "energy_mj" if self.form == "energy" else "error_increase_pct"

    @property
    def constraint_text(self) -> str:
        return f"{self.constraint_name}<={self.budget:g}"

    def split(self, z: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[float]]:
        """The M network configs and the M-1 thresholds of a point ``z``."""
        configs = []
        for i in range(1, self.m + 1):
            if i - 1 in self.fixed:
                configs.append(dict(self.fixed[i - 1]))
                continue
            vals = [int(z[f"n{i}_{name}"]) for name in STRUCTURAL]
            configs.append(self.family.config(*vals))
        return configs, [float(z[self.theta_name(i)]) for i in range(1, self.m)]

    def join(self, configs: Sequence[Mapping[str, Any]], thresholds: Sequence[float]) -> dict[str, Any]:
        z: dict[str, Any] = {}
        for i, c in enumerate(configs, start=1):
            if i - 1 in self.fixed:
                continue
            for name in STRUCTURAL:
                z[f"n{i}_{name}"] = int(c[name])
        for i, t in enumerate(thresholds, start=1):
            z[self.theta_name(i)] = float(t)
        return z

    def project(self, z: Mapping[str, Any]) -> dict[str, Any]:
        """With a candidate pool, each network snaps to the nearest pool member (unit-scaled distance)."""
        if self.pool is None:
            return dict(z)
        lows = np.array([self.family.features[0], self.family.kernel[0], self.family.features[0],
                         self.family.kernel[0], self.family.fc_units[0]], float)  # fmt: skip
        highs = np.array([self.family.features[1], self.family.kernel[1], self.family.features[1],
                          self.family.kernel[1], self.family.fc_units[1]], float)  # fmt: skip
        span = np.maximum(highs - lows, 1.0)
        if self._pool_unit is None:
            self._pool_unit = np.array([[c[n] for n in STRUCTURAL] for c in self.pool], float)
            self._pool_unit = (self._pool_unit - lows) / span
        configs, thetas = self.split(z)
        snapped = []
        for i, c in enumerate(configs):
            if i in self.fixed:
                snapped.append(c)
                continue
            u = (np.array([c[n] for n in STRUCTURAL], float) - lows) / span
            snapped.append(self.pool[int(np.argmin(((self._pool_unit - u) ** 2).sum(1)))])
        return self.join(snapped, thetas)

    # -- evaluation -----------------------------------------------------------------------------------
    def reference_error_pct(self, split: str = "design") -> float:
        net = self.trainer.get(self.reference)
        labels = self.trainer.dd.labels_design if split == "design" else self.trainer.dd.labels_test
        probs = net.probs_design if split == "design" else net.probs_test
        return 100.0 * float((probs.argmax(1) != labels).mean())

    def stage_costs(self, configs: Sequence[Mapping[str, Any]]) -> list[StageCost]:
        return [self.costs.stage(c, i, self.placement) for i, c in enumerate(configs)]

    def values(self, error_pct: float, energy_mj: float, ref_error_pct: float) -> tuple[float, float]:
        """(objective, constraint value − budget) for one design (<= 0 is feasible)."""
        if self.form == "energy":
            return error_pct, energy_mj - self.budget
        return energy_mj, (error_pct - ref_error_pct) - self.budget

    def sweep(
        self, configs: Sequence[Mapping[str, Any]], grid: Sequence[Sequence[float]] | None = None
    ) -> list[DesignPoint]:
        """Design-split metrics of networks ``configs`` at every threshold vector of ``grid``."""
        nets = [self.trainer.get(c) for c in configs]
        costs = self.stage_costs(configs)
        grid = theta_grid(self.m, self.sweep_steps) if grid is None else grid
        res = sweep_cascade([n.probs_design for n in nets], self.trainer.dd.labels_design, grid, costs)
        return [
            DesignPoint(
                [dict(c) for c in configs],
                list(map(float, g)),
                100.0 * r.error,
                r.energy_mj,
                r.latency_ms,
                r.forwarded_fraction,
            )  # fmt: skip
            for g, r in zip(grid, res, strict=True)
        ]

    def evaluate(self, z: Mapping[str, Any], *, with_test: bool = True) -> DesignPoint:
        configs, thetas = self.split(z)
        point = self.sweep(configs, [thetas])[0]
        if with_test:
            self.add_test_metrics(point)
        return point

    def add_test_metrics(self, point: DesignPoint) -> DesignPoint:
        nets = [self.trainer.get(c) for c in point.configs]
        res = sweep_cascade([n.probs_test for n in nets], self.trainer.dd.labels_test, [point.thresholds],
                            self.stage_costs(point.configs))[0]  # fmt: skip
        point.test_error_pct = 100.0 * res.error
        point.test_energy_mj = res.energy_mj
        return point

    def single(self, config: Mapping[str, Any]) -> dict[str, float]:
        """A network on its own on the edge (the thesis's monolithic markers)."""
        net = self.trainer.get(config)
        cost = self.costs.stage(config, 0, "local")
        r = single_network(net.probs_design, self.trainer.dd.labels_design, cost)
        return {"error_pct": 100.0 * r.error, "energy_mj": r.energy_mj}

    def best_of(self, points: Sequence[DesignPoint]) -> DesignPoint | None:
        """The feasible point with the lowest objective (ties: lower constraint value)."""
        ref = self.reference_error_pct() if self.form == "error" else 0.0
        best, best_key = None, None
        for p in points:
            obj, con = self.values(p.error_pct, p.energy_mj, ref)
            if con > 1e-12:
                continue
            key = (obj, con)
            if best_key is None or key < best_key:
                best, best_key = p, key
        return best
