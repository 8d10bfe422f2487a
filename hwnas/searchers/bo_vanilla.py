"""Vanilla constrained BO (thesis §3.2): constraints measured per trial and modelled during the search.

Built on Optuna's ``GPSampler`` with ``constraints_func``: a GP of the objective and one GP per
constraint value (cost - budget), combined as expected improvement × probability of feasibility
(Gardner et al. / Gelbart et al., the "vanilla constrained BO" the thesis compares against). The
searcher knows nothing of the device beyond the costs measured on the trials it has run.

A trial whose measured costs break a budget is not trained (``run``); Optuna still needs an objective
value for it, so it is told the worst objective seen so far (1.0 before any): its constraint values,
which Optuna models, carry the information.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna

from hwnas.errors import InputError
from hwnas.searchers.base import Searcher, Trial
from hwnas.searchers.space import Param


def _distribution(p: Param) -> optuna.distributions.BaseDistribution:
    if p.kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(p.choices))
    if p.kind == "int":
        return optuna.distributions.IntDistribution(int(p.low), int(p.high))  # type: ignore[arg-type]
    return optuna.distributions.FloatDistribution(float(p.low), float(p.high), log=p.kind == "log-float")  # type: ignore[arg-type]


def _constraints_of(frozen: optuna.trial.FrozenTrial) -> list[float]:
    return list(frozen.user_attrs.get("hwnas_constraints", []))


# Optuna >= 5 records constraints on the trial (``Trial.set_constraint``, read back by GPSampler);
# older releases take a ``constraints_func`` that the sampler calls after each trial.
_NEW_CONSTRAINT_API = hasattr(optuna.trial.Trial, "set_constraint")


class VanillaConstrainedBO(Searcher):
    name = "bo_vanilla"

    def __init__(
        self, *args: Any, n_init: int = 5, max_repeat_asks: int = 8, sampler: str = "gp", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if sampler not in ("gp", "tpe"):
            raise InputError(f"bo_vanilla: sampler must be 'gp' or 'tpe', got {sampler!r}")
        self.sampler_kind = sampler
        self.n_init = n_init
        self.max_repeat_asks = max(1, max_repeat_asks)
        self._results: dict[tuple[Any, ...], tuple[float, dict[str, float]]] = {}
        # Optuna logs every trial at INFO on stderr; hwnas reports progress through callbacks instead.
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", FutureWarning)  # constraints_func: TPE's only constraint input
            if sampler == "tpe":  # TPE reads constraints through constraints_func in every Optuna release
                chosen: optuna.samplers.BaseSampler = optuna.samplers.TPESampler(
                    seed=self.seed,
                    n_startup_trials=n_init,
                    constraints_func=_constraints_of if self.constraints else None,
                    multivariate=True,
                )
            else:
                chosen = optuna.samplers.GPSampler(
                    seed=self.seed,
                    n_startup_trials=n_init,
                    constraints_func=(
                        _constraints_of if self.constraints and not _NEW_CONSTRAINT_API else None
                    ),
                    deterministic_objective=False,
                    warn_independent_sampling=False,
                )
        self.study = optuna.create_study(direction="minimize", sampler=chosen)
        self.distributions = {p.name: _distribution(p) for p in self.space.params}
        self._pending: dict[int, optuna.trial.Trial] = {}

    def _ask_optuna(self) -> optuna.trial.Trial:
        import torch

        # Optuna's GP runs in torch on tiny matrices: one intra-op thread is several times faster on a
        # busy machine. Restored afterwards so that the caller's setting is untouched.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return self.study.ask(self.distributions)
        finally:
            torch.set_num_threads(threads)

    def _propose(self) -> dict[str, Any]:
        # On a finite table a proposal is projected onto its nearest row, and the GP's next proposals
        # often land on a row already evaluated. Its result is known (a real run would be cached), so it
        # is told to Optuna at the proposed point without spending an evaluation, and Optuna asks again.
        for attempt in range(self.max_repeat_asks):
            ot = self._ask_optuna()
            params = {name: ot.params[name] for name in self.space.names}
            known = self._results.get(self.space.key(self._project(params)))
            if known is None or attempt == self.max_repeat_asks - 1:
                break  # a new point, or out of retries: evaluate it (again)
            value, constraints = known
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ot.set_user_attr("hwnas_constraints", list(constraints.values()))
                if _NEW_CONSTRAINT_API:
                    for k, v in constraints.items():
                        ot.set_constraint(k, v)
                self.study.tell(ot, value)
        self._pending[len(self.history)] = ot
        return params

    def _observe(self, trial: Trial) -> None:
        # None: a replayed trial (``ask_fixed``, a resumed search) that Optuna never asked
        ot = self._pending.pop(trial.number, None)
        value = trial.objective
        if value is None:
            seen = [t.objective for t in self.history.trials if t.objective is not None]
            value = max(seen) if seen else 1.0
        values = {c.name: trial.constraints[c.name] for c in self.constraints}
        self._results[self.space.key(trial.config)] = (float(value), values)
        attrs = {"hwnas_constraints": list(values.values())}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if ot is not None and trial.config == {n: ot.params[n] for n in self.space.names}:
                ot.set_user_attr("hwnas_constraints", attrs["hwnas_constraints"])
                if _NEW_CONSTRAINT_API:
                    for k, v in values.items():
                        ot.set_constraint(k, v)
                self.study.tell(ot, float(value))
                return
            # The objective evaluated a projected point (a table's nearest row): record that point.
            if ot is not None:
                self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
            extra = (
                {"constraints": values}
                if _NEW_CONSTRAINT_API
                else {"system_attrs": {"constraints": tuple(values.values())}}
            )
            frozen = optuna.trial.create_trial(
                params=trial.config,
                distributions=self.distributions,
                value=float(value),
                user_attrs=attrs,
                **extra,
            )
            self.study.add_trial(frozen)
