"""The one-shot searcher contract: one training run of a supernet with a differentiable cost in its loss.

Black-box searchers (``base.py``) propose points and an objective trains each one. Single-Path NAS and
FBNetV2 instead train *one* over-parameterised network whose architecture parameters (superkernel
thresholds; channel-mask or op logits) are learnt by gradient descent together with, or alternating
with, its weights. The pieces:

- :class:`Supernet` (an ``nn.Module``): ``arch_parameters()``, ``cost()`` (differentiable costs of the
  current relaxed architecture, per cost name, e.g. from ``SinglePathRuntime`` or
  ``torch_costs.expected_cost`` over ``interface.candidate_cost_matrix``, or ``effective_shape_cost``),
  ``derive()`` (the discrete architecture as LayerSpecs + a search-space point + its predicted costs),
  ``on_epoch_start`` (temperature annealing, kernel-subset dropout). In ``eval()`` mode its forward pass
  must compute the *derived* network (hard decisions), so validation accuracy is that of ``derive()``.
- a cost penalty (``penalty.py``): ``loss = penalty(CE, cost)``.
- :class:`OneShotSearcher`: the training loop, with a per-step and a per-epoch callback, checkpoints
  to resume an interrupted search, and a :class:`~hwnas.searchers.base.History` of the same
  :class:`~hwnas.searchers.base.Trial` records as the black-box searchers, one per epoch: the derived
  architecture (``config``), its predicted costs and constraint values, measured costs when a
  ``measure`` function is given, and ``objective`` = 1 − validation accuracy. ``compare``, the plots and
  the reports therefore read both kinds of search.

To add a one-shot searcher: one file in ``searchers/`` with a ``Supernet`` subclass (and, if the method
needs it, an ``OneShotSearcher`` subclass overriding ``arch_step``), registered in ``ONESHOT``.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hwnas.errors import InputError
from hwnas.searchers.base import History, Trial
from hwnas.searchers.constraints import Constraint, constraint_values, is_feasible, parse_constraints
from hwnas.searchers.penalty import CostPenalty, make_penalty

# One-shot searchers by name (module:callable building a OneShotSearcher); filled by each method's file.
ONESHOT: dict[str, str] = {
    "single-path": "hwnas.searchers.single_path:make_single_path_searcher",
    "multi-path": "hwnas.searchers.multi_path:make_multi_path_searcher",
    "fbnetv2": "hwnas.searchers.fbnetv2:make_fbnetv2_searcher",
}


@dataclass
class DerivedArchitecture:
    """The discrete architecture a supernet encodes now.

    ``config``: the search-space point (what a History logs, e.g. ``{"arch": "k3e6-k5e3-..."}``);
    ``layers``: its LayerSpecs (costable by any cost model, buildable by ``graph.builders``);
    ``costs``: its predicted costs (discrete, not the relaxed expectation) per cost name.
    """

    config: dict[str, Any]
    layers: list[Any]
    costs: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Supernet(nn.Module, ABC):
    """A network holding every architecture of a space; see the module docstring for the contract."""

    cost_names: tuple[str, ...] = ("latency_ms",)

    @abstractmethod
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (thresholds, logits); optimised by the arch optimizer."""

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every other trainable parameter (the network's weights)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch and p.requires_grad]

    @abstractmethod
    def cost(self) -> dict[str, torch.Tensor]:
        """Differentiable costs (0-d tensors) of the current relaxed architecture, per cost name."""

    @abstractmethod
    def derive(self) -> DerivedArchitecture:
        """The discrete architecture the parameters select now."""

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:  # noqa: B027 - optional hook
        """Called before each epoch (0-based): anneal temperatures, switch kernel dropout off, ..."""

    def arch_state(self) -> dict[str, Any]:
        """A JSON-able readout of the architecture parameters, logged in each epoch's record."""
        return {
            f"p{i}": p.detach().cpu().double().flatten().tolist()
            for i, p in enumerate(self.arch_parameters())
        }


@dataclass
class StepInfo:
    """What the per-step callback sees (for progress bars)."""

    epoch: int
    step: int
    n_steps: int
    loss: float
    ce: float
    cost: float


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class OneShotSearcher:
    """Trains a :class:`Supernet` on ``penalty(CE, cost)`` and logs one :class:`Trial` per epoch.

    ``bilevel=False`` (Single-Path NAS, eq. 5.6): weights and architecture parameters take a gradient step
    on the same batch. ``bilevel=True`` (FBNet, DARTS-style eq. 2.3; Single-Path with softmax §6.2):
    weights step on CE over ``train``, then architecture parameters step on ``penalty(CE, cost)`` over a
    batch of ``arch_data`` (a held-out split). During the first ``warmup_epochs`` only the weights train,
    on CE alone (FBNet's warm-up). ``constraints`` (``latency_ms<=80``) are logged per epoch as predicted
    (from ``derive().costs``) and, with ``measure``, as measured values.
    """

    name: ClassVar[str] = "oneshot"

    def __init__(
        self,
        supernet: Supernet,
        penalty: CostPenalty | str | None = None,
        *,
        cost_name: str | None = None,
        constraints: Sequence[str | Constraint] = (),
        epochs: int = 8,
        warmup_epochs: int = 0,
        lr: float = 0.05,
        arch_lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 4e-5,
        arch_weight_decay: float = 0.0,
        bilevel: bool = False,
        arch_schedule: str = "step",
        grad_clip: float | None = 5.0,
        weight_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
        arch_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer] | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        name: str | None = None,
    ) -> None:
        if epochs < 1:
            raise InputError(f"epochs must be >= 1, got {epochs}")
        if not 0 <= warmup_epochs < epochs:
            raise InputError(f"warmup_epochs must lie in [0, epochs), got {warmup_epochs} of {epochs}")
        self.supernet = supernet
        self.penalty = make_penalty(penalty)
        self.cost_name = cost_name or supernet.cost_names[0]
        if self.cost_name not in supernet.cost_names:
            raise InputError(
                f"the supernet prices {list(supernet.cost_names)}, not {self.cost_name!r}",
                hint="pick one of its cost names",
            )
        self.constraints = parse_constraints(constraints)
        self.epochs = int(epochs)
        self.warmup_epochs = int(warmup_epochs)
        self.bilevel = bool(bilevel)
        if arch_schedule not in ("step", "epoch"):
            raise InputError(f"arch_schedule must be 'step' or 'epoch', got {arch_schedule!r}")
        # bilevel only. "step": an arch step after every weight step; "epoch": all weight steps of an
        # epoch, then one arch step per arch_data batch (FBNet/FBNetV2, Wan thesis §3.4).
        self.arch_schedule = arch_schedule
        self.grad_clip = grad_clip
        self.seed = seed
        self.device = torch.device(device)
        if name:
            self.name = name  # type: ignore[misc]
        torch.manual_seed(seed)
        self.supernet.to(self.device)
        w_params, a_params = supernet.weight_parameters(), supernet.arch_parameters()
        self._w_params = w_params
        self.opt_w = (
            weight_optimizer(w_params)
            if weight_optimizer
            else torch.optim.SGD(w_params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
        )
        self.opt_a = (
            (
                arch_optimizer(a_params)
                if arch_optimizer
                else torch.optim.Adam(
                    a_params, lr=arch_lr, betas=(0.5, 0.999), weight_decay=arch_weight_decay
                )
            )
            if a_params
            else None
        )
        self._base_lr = [g["lr"] for g in self.opt_w.param_groups]
        self.history = History(
            meta={
                "searcher": self.name,
                "kind": "one-shot",
                "seed": seed,
                "constraints": [str(c) for c in self.constraints],
                "penalty": self.penalty.to_dict(),
                "cost_name": self.cost_name,
                "epochs": self.epochs,
                "warmup_epochs": self.warmup_epochs,
                "bilevel": self.bilevel,
                "arch_schedule": self.arch_schedule,
                "n_weight_params": int(sum(p.numel() for p in w_params)),
                "n_arch_params": int(sum(p.numel() for p in a_params)),
            }
        )
        self.derived: DerivedArchitecture | None = None

    # -- one step ------------------------------------------------------------------------------------
    def _cost(self) -> torch.Tensor:
        costs = self.supernet.cost()
        if self.cost_name not in costs:
            raise InputError(f"the supernet's cost() gave {sorted(costs)}, not {self.cost_name!r}")
        return costs[self.cost_name]

    def _clip(self, params: list[nn.Parameter]) -> None:
        if self.grad_clip is not None and params:
            nn.utils.clip_grad_norm_(params, self.grad_clip)

    def train_step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        searching: bool,
        arch_batch: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> tuple[float, float, float]:
        """One step; returns (loss, CE, cost) as floats."""
        net = self.supernet
        net.train()
        x, y = x.to(self.device), y.to(self.device)
        joint = searching and not self.bilevel
        self.opt_w.zero_grad(set_to_none=True)
        if self.opt_a is not None:
            self.opt_a.zero_grad(set_to_none=True)
        ce = nn.functional.cross_entropy(net(x), y)
        cost = self._cost()
        loss = self.penalty(ce, cost) if joint else ce
        loss.backward()
        self._clip(self._w_params)
        self.opt_w.step()
        if joint and self.opt_a is not None:
            self.opt_a.step()
        if searching and self.bilevel and self.opt_a is not None and self.arch_schedule == "step":
            loss = self.arch_step(*(arch_batch if arch_batch is not None else (x, y)))
        return float(loss.detach()), float(ce.detach()), float(cost.detach())

    def arch_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Bilevel: one step of the architecture parameters on ``penalty(CE, cost)`` over a held-out batch."""
        assert self.opt_a is not None
        x, y = x.to(self.device), y.to(self.device)
        self.opt_a.zero_grad(set_to_none=True)
        self.opt_w.zero_grad(set_to_none=True)
        loss = self.penalty(nn.functional.cross_entropy(self.supernet(x), y), self._cost())
        loss.backward()
        self.opt_a.step()
        self.opt_w.zero_grad(set_to_none=True)  # the weights' step is on the train split only
        return loss

    @torch.no_grad()
    def validate(self, val: Batches) -> float:
        """Accuracy of the derived network (the supernet in eval mode) on ``val``."""
        self.supernet.eval()
        right = total = 0
        for x, y in val:
            pred = self.supernet(x.to(self.device)).argmax(1)
            right += int((pred == y.to(self.device)).sum())
            total += int(y.numel())
        if total == 0:
            raise InputError("the validation data is empty")
        return right / total

    def _set_lr(self, epoch: int, step: int, n_steps: int) -> float:
        """Cosine decay over the whole search (per step), as MnasNet/Single-Path schedules do."""
        t = (epoch + step / max(1, n_steps)) / self.epochs
        f = 0.5 * (1.0 + math.cos(math.pi * t))
        for g, base in zip(self.opt_w.param_groups, self._base_lr, strict=True):
            g["lr"] = base * f
        return self._base_lr[0] * f

    # -- the loop -------------------------------------------------------------------------------------
    def run(
        self,
        train: Batches,
        val: Batches,
        *,
        arch_data: Batches | None = None,
        callback: Callable[[Trial], None] | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        measure: Callable[[DerivedArchitecture], Mapping[str, float]] | None = None,
        checkpoint: str | Path | None = None,
    ) -> History:
        """Train for ``epochs`` epochs; one Trial per epoch in ``self.history`` (returned).

        ``train``/``val``/``arch_data``: re-iterable batches (a DataLoader). ``measure(derived)``: measured
        costs of the derived network (e.g. on the target device). ``checkpoint``: a file written after
        every epoch; if it exists the search resumes after its last finished epoch.
        """
        start = self._resume(checkpoint) if checkpoint is not None else 0
        n_steps = len(train) if hasattr(train, "__len__") else 0  # type: ignore[arg-type]
        for epoch in range(start, self.epochs):
            t0 = time.perf_counter()
            self.supernet.on_epoch_start(epoch, self.epochs)
            searching = epoch >= self.warmup_epochs
            per_step = self.bilevel and arch_data is not None and self.arch_schedule == "step"
            arch_iter = _cycle(arch_data) if per_step else None
            losses, ces, costs = [], [], []
            for step, (x, y) in enumerate(train):
                lr = self._set_lr(epoch, step, n_steps)
                ab = next(arch_iter) if arch_iter is not None else None
                loss, ce, cost = self.train_step(x, y, searching, ab)
                if not math.isfinite(loss):
                    raise InputError(
                        f"one-shot search diverged at epoch {epoch + 1}, step {step + 1} (loss {loss})",
                        hint="lower the learning rate or the penalty weight",
                    )
                losses.append(loss)
                ces.append(ce)
                costs.append(cost)
                if on_step is not None:
                    on_step(StepInfo(epoch, step, n_steps, loss, ce, cost))
            if searching and self.bilevel and self.arch_schedule == "epoch" and self.opt_a is not None:
                for xa, ya in arch_data if arch_data is not None else train:
                    self.arch_step(xa, ya)
            train_s = time.perf_counter() - t0
            acc = self.validate(val)
            trial = self._record(
                epoch, acc, losses, ces, costs, lr if losses else float("nan"), searching, measure
            )
            trial.eval_time_s = train_s
            trial.wall_time_s = time.perf_counter() - t0
            if checkpoint is not None:
                self._save(checkpoint, epoch + 1)
            if callback is not None:
                callback(trial)
        return self.history

    def _record(
        self,
        epoch: int,
        acc: float,
        losses: list[float],
        ces: list[float],
        costs: list[float],
        lr: float,
        searching: bool,
        measure: Callable[[DerivedArchitecture], Mapping[str, float]] | None,
    ) -> Trial:
        with torch.no_grad():
            self.supernet.eval()
            derived = self.supernet.derive()
            relaxed = {k: float(v.detach()) for k, v in self.supernet.cost().items()}
        self.derived = derived
        pred = {k: float(v) for k, v in derived.costs.items()}
        modelled = [c for c in self.constraints if c.name in pred]
        trial = Trial(number=len(self.history), config=dict(derived.config), searcher=self.name)
        trial.predicted_costs = pred
        trial.predicted_constraints = constraint_values(modelled, pred)
        trial.predicted_feasible = is_feasible(trial.predicted_constraints) if modelled else None
        if measure is not None:
            trial.measured_costs = {k: float(v) for k, v in measure(derived).items()}
            trial.constraints = constraint_values(
                [c for c in self.constraints if c.name in trial.measured_costs], trial.measured_costs
            )
            trial.feasible = is_feasible(trial.constraints)
            source = "measured"
        else:
            trial.feasible = trial.predicted_feasible if modelled else True
            source = "predicted" if modelled else "none"
        trial.objective = 1.0 - acc
        trial.state = "complete"
        trial.info.update(
            {
                "epoch": epoch + 1,
                "phase": "search" if searching else "warmup",
                "val_accuracy": acc,
                "train_loss": float(np.mean(losses)) if losses else float("nan"),
                "train_ce": float(np.mean(ces)) if ces else float("nan"),
                "train_cost_mean": float(np.mean(costs)) if costs else float("nan"),
                "relaxed_costs": relaxed,
                "lr": lr,
                "steps": len(losses),
                "feasible_from": source,
                "arch_state": self.supernet.arch_state(),
                **derived.info,
            }
        )
        self.history.trials.append(trial)
        return trial

    # -- checkpoints ----------------------------------------------------------------------------------
    def _save(self, path: str | Path, epochs_done: int) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(
            {
                "epochs_done": epochs_done,
                "supernet": self.supernet.state_dict(),
                "opt_w": self.opt_w.state_dict(),
                "opt_a": None if self.opt_a is None else self.opt_a.state_dict(),
                "history": {"meta": self.history.meta, "trials": self.history.to_records()},
                "torch_rng": torch.get_rng_state(),
            },
            tmp,
        )
        os.replace(tmp, path)

    def _resume(self, path: str | Path) -> int:
        path = Path(path)
        if not path.exists():
            return 0
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
            self.supernet.load_state_dict(state["supernet"])
            self.opt_w.load_state_dict(state["opt_w"])
            if self.opt_a is not None and state.get("opt_a") is not None:
                self.opt_a.load_state_dict(state["opt_a"])
        except Exception as exc:  # noqa: BLE001 - torch.load raises pickle, zip, runtime and key errors
            raise InputError(
                f"checkpoint {path}: cannot resume from it ({exc})",
                hint="it belongs to another supernet or is damaged; delete it to start afresh",
            ) from exc
        torch.set_rng_state(state["torch_rng"])
        self.history = History(
            [Trial.from_dict(t) for t in state["history"]["trials"]], state["history"]["meta"]
        )
        return int(state["epochs_done"])


def _cycle(batches: Batches) -> Any:
    while True:
        yield from batches


def make_oneshot_searcher(name: str, **kwargs: Any) -> OneShotSearcher:
    """Build one-shot searcher ``name`` (``single-path``, ``multi-path``) with its factory's options."""
    import importlib

    if name not in ONESHOT:
        raise InputError(f"unknown one-shot searcher {name!r}", hint=f"known: {', '.join(ONESHOT)}")
    module, fn = ONESHOT[name].split(":")
    return getattr(importlib.import_module(module), fn)(**kwargs)


def tensor_batches(
    x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True, seed: int = 0
) -> torch.utils.data.DataLoader:
    """A DataLoader over in-memory tensors (the small datasets the tests and the digits search use)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, generator=gen
    )


def check_supernet(net: Supernet, x: torch.Tensor) -> DerivedArchitecture:
    """Conformance checks every Supernet should pass (call it from a searcher's tests); raises
    ``AssertionError`` naming the broken rule. Returns the derived architecture."""
    arch = net.arch_parameters()
    assert arch, "arch_parameters() is empty: nothing to search"
    ids = {id(p) for p in arch}
    assert not any(id(p) in ids for p in net.weight_parameters()), "a parameter is both weight and arch"
    net.train()
    out = net(x)
    assert out.ndim == 2 and out.shape[0] == x.shape[0], f"forward gave shape {tuple(out.shape)}"
    costs = net.cost()
    assert set(net.cost_names) <= set(costs), f"cost() gave {sorted(costs)}, cost_names {net.cost_names}"
    for name in net.cost_names:
        c = costs[name]
        assert torch.is_tensor(c) and c.ndim == 0, f"cost {name!r} is not a 0-d tensor"
        assert c.requires_grad, f"cost {name!r} has no gradient: the penalty could not steer the search"
    net.zero_grad(set_to_none=True)
    costs[net.cost_names[0]].backward()
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in arch), (
        "the cost's gradient reaches no architecture parameter"
    )
    net.zero_grad(set_to_none=True)
    net.eval()
    with torch.no_grad():
        d = net.derive()
        a, b = net(x), net(x)
    assert torch.allclose(a, b), "eval-mode forward is not deterministic (it must be the derived network)"
    assert isinstance(d.config, dict) and d.config, "derive().config is empty"
    assert d.layers, "derive().layers is empty"
    assert set(net.cost_names) <= set(d.costs), f"derive().costs lacks {set(net.cost_names) - set(d.costs)}"
    return d
