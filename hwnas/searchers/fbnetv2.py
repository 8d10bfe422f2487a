"""FBNetV2 / DMaskingNAS as a one-shot searcher (Wan thesis ch. 3) on the contract of ``oneshot.py``.

:class:`FBNetV2Supernet` wraps :class:`~hwnas.searchers.dmasking.DMaskingSupernet` as a
:class:`~hwnas.searchers.oneshot.Supernet`: in training mode every forward pass draws Gumbel-softmax
weights at the current temperature (τ = 5.0 · e^(−0.045·epoch), §3.4) and ``cost()`` prices the same draw
on effective shapes (FLOPs, params, MACs; eq. 3.5-3.10) or, given a device's per-layer cost table,
as expected latency. In eval mode it runs the derived network (argmax of every α). ``derive()`` gives the
point, its LayerSpecs and its costs from the analytic counter (``hwnas.graph``) or the cost table.

:func:`make_fbnetv2_searcher` builds the search as §3.4 runs it: weights by SGD on 80 % of the training
split, architecture parameters by Adam on the other 20 %, alternating per epoch (``arch_schedule="epoch"``).
:func:`search_data` prepares the data (digits resized to the space's largest resolution, or a CIFAR-10
folder), :func:`train_derived` trains a derived network from scratch ("this final architecture is then
trained") and returns its accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.searchers.dmasking import DMaskingSupernet, TableCost, nearest_indices
from hwnas.searchers.oneshot import DerivedArchitecture, OneShotSearcher, Supernet, tensor_batches
from hwnas.spaces.fbnetv2 import FBNetV2Arch, FBNetV2Space

ANALYTIC_COSTS = ("flops", "params", "macs")
TAU0 = 5.0  # §3.4: initial temperature
TAU_DECAY = 0.045  # §3.4: τ ← τ · e^(−0.045) every epoch


class FBNetV2Supernet(Supernet):
    """DMaskingNAS as a contract supernet. ``cost``: ``flops``/``params``/``macs`` on effective shapes,
    or any cost name a ``predictor`` (a ``LayerCostPredictor``, e.g. a device's latency table) prices."""

    def __init__(
        self,
        space: FBNetV2Space,
        cost: str = "flops",
        predictor: Any = None,
        tau0: float = TAU0,
        tau_decay: float = TAU_DECAY,
    ) -> None:
        super().__init__()
        self.space = space
        self.net = DMaskingSupernet(space)
        self.predictor = predictor
        if cost not in ANALYTIC_COSTS and predictor is None:
            raise InputError(
                f"cost {cost!r} needs a per-layer cost table",
                hint=f"analytic costs: {', '.join(ANALYTIC_COSTS)}; for latency pass a device's table",
            )
        self.table = TableCost(self.net, predictor, cost) if cost not in ANALYTIC_COSTS else None
        self.cost_kind = cost
        self.cost_names = (cost,)
        self.tau0, self.tau_decay = float(tau0), float(tau_decay)
        self.tau = self.tau0
        self._g: dict[str, torch.Tensor] | None = None

    # -- contract ------------------------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.net.alphas.values())

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        self.tau = self.tau0 * math.exp(-self.tau_decay * epoch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._g = self.net.sample_weights(self.tau)
            return self.net(x, self._g)
        return self.net(x, self.net.argmax_weights())

    def relaxed_weights(self) -> dict[str, torch.Tensor]:
        """The weights of the last training forward pass (one Gumbel draw); without one, softmax(α/τ)."""
        if self.training and self._g is not None:
            return self._g
        return {n: torch.softmax(a / self.tau, -1) for n, a in self.net.alphas.items()}

    def cost(self) -> dict[str, torch.Tensor]:
        g = self.relaxed_weights()
        if self.table is not None:
            return {self.cost_kind: self.table(g)}
        return {self.cost_kind: self.net.cost(g, self.cost_kind)}

    def derive(self) -> DerivedArchitecture:
        arch = self.net.derive()
        spec = self.space.layers(arch)
        costs: dict[str, float] = {
            "flops": float(spec.flops),
            "params": float(spec.params),
            "macs": float(spec.macs),
        }
        if self.predictor is not None and self.cost_kind not in costs:
            est = self.predictor.predict([spec.layers])[self.cost_kind]  # Σ layers + the fitted overhead
            costs[self.cost_kind] = float(est.value[0])
        return DerivedArchitecture(
            config=arch.to_config(), layers=list(spec.layers), costs=costs, info={"tau": self.tau}
        )

    def arch_state(self) -> dict[str, Any]:
        """Per decision, softmax(α) over its options (what the per-epoch record logs)."""
        return {
            n: {
                str(o): round(float(p), 4)
                for o, p in zip(self.net.decisions[n], torch.softmax(a.detach(), -1), strict=True)
            }
            for n, a in self.net.alphas.items()
        }


class FBNetV2Searcher(OneShotSearcher):
    """The contract's loop with §3.4's schedule: per epoch, weights (SGD) over the 80 % split, then
    architecture parameters (Adam) over the 20 % split."""

    name = "fbnetv2"


@dataclass
class SearchData:
    """The splits of a search: weights (80 % of train), arch (20 %), and a held-out validation split."""

    name: str
    x_weights: torch.Tensor
    y_weights: torch.Tensor
    x_arch: torch.Tensor
    y_arch: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    num_classes: int

    @property
    def in_channels(self) -> int:
        return int(self.x_weights.shape[1])


def search_data(
    dataset: str | None,
    resolution: int,
    *,
    seed: int = 0,
    arch_fraction: float = 0.2,
    max_train: int | None = None,
) -> SearchData:
    """Digits (default) or a CIFAR-10/MNIST folder, resized (bilinear) to ``resolution``; the training
    split is divided into weights (1 − ``arch_fraction``) and arch (``arch_fraction``) parts (§3.4)."""
    from hwnas.searchers.objectives.training import load_dataset

    if not 0.0 < arch_fraction < 1.0:
        raise InputError(f"arch fraction must lie in (0, 1), got {arch_fraction}")
    d = load_dataset(dataset, val_fraction=0.2, seed=seed, max_train=max_train)

    def resize(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == resolution and x.shape[-2] == resolution:
            return x.contiguous()
        return nn.functional.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False
        )

    xt, yt = resize(d.x_train), d.y_train
    order = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed + 1))
    n_arch = max(1, int(round(len(xt) * arch_fraction)))
    a, w = order[:n_arch], order[n_arch:]
    return SearchData(d.name, xt[w], yt[w], xt[a], yt[a], resize(d.x_val), d.y_val, d.num_classes)


def make_fbnetv2_searcher(
    space: FBNetV2Space,
    *,
    cost: str = "flops",
    predictor: Any = None,
    penalty: Any = None,
    constraints: Any = (),
    epochs: int = 10,
    warmup_epochs: int = 1,
    lr: float = 0.1,
    arch_lr: float = 0.01,
    seed: int = 0,
    device: str = "cpu",
    tau0: float = TAU0,
    tau_decay: float = TAU_DECAY,
) -> FBNetV2Searcher:
    """The FBNetV2 search on ``space``: SGD on the weights, Adam on α, alternating per epoch (§3.4)."""
    torch.manual_seed(seed)
    net = FBNetV2Supernet(space, cost, predictor, tau0, tau_decay)
    return FBNetV2Searcher(
        net,
        penalty,
        cost_name=cost,
        constraints=constraints,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        lr=lr,
        arch_lr=arch_lr,
        bilevel=True,
        arch_schedule="epoch",
        seed=seed,
        device=device,
    )


def subsample(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Nearest-neighbour subsampling of a batch at the largest resolution (what the supernet does)."""
    if x.shape[-1] == resolution:
        return x
    idx = nearest_indices(resolution, x.shape[-1], x.device)
    return x[:, :, idx][:, :, :, idx]


def train_derived(
    space: FBNetV2Space,
    arch: FBNetV2Arch,
    data: SearchData,
    *,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    train_on: str = "all",
    on_epoch: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Train the derived network from scratch; accuracy on the validation split (and on the arch split,
    which scores candidates when ``train_on="weights"`` keeps it out of training)."""
    if train_on not in ("all", "weights"):
        raise InputError(f"train_on must be 'all' or 'weights', got {train_on!r}")
    torch.manual_seed(seed)
    net = space.build(arch)
    xs, ys = [data.x_weights], [data.y_weights]
    if train_on == "all":
        xs.append(data.x_arch)
        ys.append(data.y_arch)
    x, y = subsample(torch.cat(xs), arch.resolution), torch.cat(ys)
    xv = subsample(data.x_val, arch.resolution)
    loader = tensor_batches(x, y, batch_size, seed=seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=4e-5, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, epochs * len(loader)))
    t0 = time.process_time()
    acc = 0.0
    for ep in range(epochs):
        net.train()
        for xb, yb in loader:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
            sched.step()
        acc = accuracy(net, xv, data.y_val)
        if on_epoch is not None:
            on_epoch(ep, acc)
    arch_acc = accuracy(net, subsample(data.x_arch, arch.resolution), data.y_arch)
    return {"val_accuracy": acc, "arch_accuracy": arch_acc, "train_cpu_s": time.process_time() - t0}


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    net.eval()
    right = sum(
        int((net(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return right / max(1, len(y))


def run_search(
    space: FBNetV2Space,
    data: SearchData,
    *,
    cost: str = "flops",
    predictor: Any = None,
    penalty: Any = None,
    constraints: Any = (),
    epochs: int = 10,
    warmup_epochs: int = 1,
    batch_size: int = 64,
    seed: int = 0,
    callback: Callable[[Any], None] | None = None,
    on_step: Callable[[Any], None] | None = None,
    measure: Callable[[DerivedArchitecture], Mapping[str, float]] | None = None,
    checkpoint: Any = None,
    **kwargs: Any,
) -> FBNetV2Searcher:
    """One FBNetV2 search end to end (the library call the CLI makes); returns the finished searcher."""
    s = make_fbnetv2_searcher(
        space,
        cost=cost,
        predictor=predictor,
        penalty=penalty,
        constraints=constraints,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        seed=seed,
        **kwargs,
    )
    train = tensor_batches(data.x_weights, data.y_weights, batch_size, seed=seed)
    arch = tensor_batches(data.x_arch, data.y_arch, batch_size, seed=seed + 1)
    val = tensor_batches(data.x_val, data.y_val, 256, shuffle=False)
    s.history.meta.update({"space": space.to_dict(), "dataset": data.name, "tau0": s.supernet.tau0})
    s.run(
        train, val, arch_data=arch, callback=callback, on_step=on_step, measure=measure, checkpoint=checkpoint
    )
    return s


def budget_constraint(cost: str, budget: str | float | None) -> Any:
    """``--budget`` text as a constraint on ``cost`` (``2M`` FLOPs, ``40k`` params, ``1.5ms`` latency)."""
    from hwnas.searchers.constraints import Constraint

    if budget is None:
        return None
    name = "latency" if cost == "latency_ms" else cost
    if isinstance(budget, (int, float)):  # a number is in the cost's own unit (ms for latency_ms)
        text = f"{name}<={float(budget)!r}{'ms' if cost == 'latency_ms' else ''}"
    else:
        text = f"{name}<={budget}"
    c = Constraint.parse(text)
    if c.name != cost:
        raise InputError(
            f"budget {budget!r} is not a budget on {cost}", hint="e.g. 2M for flops, 1.5ms for latency"
        )
    return c


def default_penalty(space: FBNetV2Space, cost: str, budget: float | None, predictor: Any = None) -> str:
    """The hard-budget form (``budget:B,10``) under a budget; without one, the thesis's ``CE + λ·cost``
    with the cost relative to the largest architecture's (``linear:0.5,<its cost>``)."""
    if budget is not None:
        return f"budget:{budget:.10g},10"
    spec = space.layers(space.default())
    ref = (
        float(predictor.predict([spec.layers])[cost].value[0])
        if cost not in ANALYTIC_COSTS
        else float({"flops": spec.flops, "params": spec.params, "macs": spec.macs}[cost])
    )
    return f"linear:0.5,{ref:.10g}"


@dataclass
class SearchOutcome:
    """What a finished FBNetV2 search hands back: the searcher (history, supernet), the derived point,
    its LayerSpecs and costs (counted, predicted and measured), and the retrained accuracy if asked."""

    searcher: FBNetV2Searcher
    arch: FBNetV2Arch
    costs: dict[str, float]
    measured: dict[str, float]
    feasible: bool | None
    final: dict[str, float]

    def summary(self) -> dict[str, Any]:
        h = self.searcher.history
        last = h.trials[-1]
        return {
            "searcher": "fbnetv2",
            "space": self.searcher.supernet.space.name,
            "cost": self.searcher.cost_name,
            "penalty": self.searcher.penalty.to_dict(),
            "constraints": h.meta.get("constraints", []),
            "epochs": len(h),
            "derived": self.arch.to_config(),
            "costs": self.costs,
            "measured_costs": self.measured,
            "feasible": self.feasible,
            "supernet_val_accuracy": last.info.get("val_accuracy"),
            "final_training": self.final,
            "trials": h.to_records(),
        }


def fbnetv2_search(
    space: FBNetV2Space,
    data: SearchData,
    *,
    cost: str = "flops",
    budget: Any = None,
    predictor: Any = None,
    penalty: str | None = None,
    epochs: int = 10,
    final_epochs: int = 0,
    measure_final: Callable[[FBNetV2Arch, nn.Module], Mapping[str, float]] | None = None,
    final_train_on: str = "all",
    **kwargs: Any,
) -> SearchOutcome:
    """Search, derive, optionally measure the derived network on a device (``measure_final``, e.g. the
    device's profiler) and retrain it from scratch for ``final_epochs``. Feasibility is judged on the
    measured cost when there is one, else on the analytic count (FLOPs/params) or the table's prediction."""
    con = budget_constraint(cost, budget) if budget is not None and not hasattr(budget, "name") else budget
    pen = penalty or default_penalty(space, cost, con.budget if con is not None else None, predictor)
    if pen.strip() == "budget" and con is not None:
        pen = f"budget:{con.budget:.10g},10"
    s = run_search(
        space,
        data,
        cost=cost,
        predictor=predictor,
        penalty=pen,
        constraints=[con] if con else [],
        epochs=epochs,
        **kwargs,
    )
    derived = s.supernet.derive()
    arch = FBNetV2Arch.from_config(derived.config)
    measured: dict[str, float] = {}
    if measure_final is not None:
        measured = {k: float(v) for k, v in measure_final(arch, space.build(arch).eval()).items()}
        last = s.history.trials[-1]
        last.measured_costs = dict(measured)
        if con is not None and con.name in measured:
            last.constraints = {con.name: con.value(measured[con.name])}
            last.feasible = con.value(measured[con.name]) <= 0
    feasible = None
    if con is not None:
        value = measured.get(con.name, derived.costs.get(con.name))
        feasible = None if value is None else con.value(value) <= 0
    final = (
        train_derived(
            space, arch, data, epochs=final_epochs, seed=kwargs.get("seed", 0), train_on=final_train_on
        )
        if final_epochs
        else {}
    )
    return SearchOutcome(s, arch, dict(derived.costs), measured, feasible, final)
