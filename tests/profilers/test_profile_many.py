"""Several models in one job loop (issue 23): jobs interleaved across models by default, model after
model on request; each model's records, results and resume as with one profile call."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from profiler_helpers import fast_config, tiny_model  # noqa: E402

from hwnas.profilers.registry import get_profiler  # noqa: E402


class OrderStore:
    """The real store, noting the model of every record in the order the jobs wrote them."""

    def __init__(self, store) -> None:
        self._store, self.order = store, []

    def __getattr__(self, name):
        return getattr(self._store, name)

    def add(self, m) -> None:
        self.order.append(m.model_id)
        self._store.add(m)


def _runs(order: list[str]) -> list[str]:
    """Model ids with consecutive repeats collapsed: the sequence of model switches."""
    return [m for i, m in enumerate(order) if i == 0 or order[i - 1] != m]


def _models():
    return [tiny_model("a"), tiny_model("b", twin_convs=True)]


def test_jobs_of_several_models_are_interleaved(store) -> None:
    rec = OrderStore(store)
    prof = get_profiler(fast_config())
    results = prof.profile_many(_models(), rec, memory=False)
    assert [r.model_id for r in results] == ["test:a", "test:b"]
    assert all(r.jobs_total > 3 and not r.failures and r.jobs_skipped == 0 for r in results)
    # one job of each model in turn while both have jobs left: many switches, not two blocks
    assert len(_runs(rec.order)) >= 2 * min(r.jobs_total for r in results) - 1
    for r in results:  # each model's records are its own, layers and the whole model
        mine = store.query(model_id=r.model_id)
        assert {m.scope for m in mine} == {"layer", "model"} and len(r.measured) == len(mine)


def test_no_interleave_runs_model_after_model_and_resume_skips_everything(store) -> None:
    rec = OrderStore(store)
    prof = get_profiler(fast_config())
    first = prof.profile_many(_models(), rec, memory=False, interleave=False)
    assert _runs(rec.order) == ["test:a", "test:b"]
    again = prof.profile_many(_models(), rec, memory=False)
    assert [r.jobs_skipped for r in again] == [r.jobs_total for r in first]
    assert not any(r.measured for r in again)


def test_one_model_profile_is_profile_many_of_one(store, tmp_path) -> None:
    from hwnas.store import SQLiteStore

    prof = get_profiler(fast_config())
    one = prof.profile(tiny_model("c"), store, memory=False)
    with SQLiteStore(tmp_path / "other.db") as other:
        (many,) = prof.profile_many([tiny_model("c")], other, memory=False)
        ids = {m.identity() for m in other.query()}
    assert one.jobs_total == many.jobs_total and one.model_id == many.model_id
    assert {m.identity() for m in store.query()} == ids  # the same records
