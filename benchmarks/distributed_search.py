"""Ray executor: 2 workers vs 1 on real training, and Ray's overhead per ask/tell round trip.

1. Real training (HyperPower's CNN family on scikit-learn's digits, ``--epochs`` epochs, random search,
   no budgets): the same seed's trials run with the local executor (one at a time) and on a local Ray with
   2 workers. Prints both wall times, their ratio, and the CPU seconds each trial took on its worker, so
   that a speed-up well under 2x on a shared 2-core machine can be told apart from overhead.
2. Round trip on a tabular objective (``hyperpower-digits``: evaluating a trial is a table lookup): ms per
   trial with the local loop and with Ray (1 worker), and the difference = Ray's cost per ask/tell.

Run: ``python benchmarks/distributed_search.py [--trials 8] [--epochs 2] [--tabular 60]``.
"""

from __future__ import annotations

import argparse
import os
import time


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--tabular", type=int, default=60)
    args = ap.parse_args()

    from hwnas.distributed.executor import LocalExecutor
    from hwnas.distributed.ray_executor import RayExecutor
    from hwnas.distributed.search_loop import run_search
    from hwnas.searchers.objectives import get_objective
    from hwnas.searchers.registry import make_searcher

    print(f"load average at start: {load()}")
    train = get_objective("train", epochs=args.epochs, seed=0)

    def searcher(obj):  # noqa: ANN001, ANN202
        return make_searcher("random_search", obj.space, seed=0, early_termination=False)

    t0 = time.perf_counter()
    h1 = run_search(searcher(train), train, args.trials, executor=LocalExecutor())
    local_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    ray_ex = RayExecutor(workers=2)
    init_s = time.perf_counter() - t1
    t0 = time.perf_counter()
    h2 = run_search(searcher(train), train, args.trials, executor=ray_ex, sync=True)
    ray_s = time.perf_counter() - t0
    cpu1 = [t.info.get("worker_cpu_s", float("nan")) for t in h1]
    cpu2 = [t.info.get("worker_cpu_s", float("nan")) for t in h2]
    same = [t.config for t in h1] == [t.config for t in h2]
    print(
        f"real training, {args.trials} trials x {args.epochs} epochs "
        f"(random search, seed 0; same configs: {same})"
    )
    print(f"  local, 1 at a time: {local_s:.1f} s wall; CPU per trial {sum(cpu1) / len(cpu1):.2f} s")
    print(
        f"  Ray, 2 workers:     {ray_s:.1f} s wall (+{init_s:.1f} s to start Ray); "
        f"CPU per trial {sum(cpu2) / len(cpu2):.2f} s"
    )
    print(f"  speed-up 2 vs 1 worker: {local_s / ray_s:.2f}x; load average now {load()}")

    tab = get_objective("hyperpower-digits")
    n = args.tabular
    t0 = time.perf_counter()
    run_search(searcher(tab), tab, n, executor=LocalExecutor())
    loc_ms = 1e3 * (time.perf_counter() - t0) / n
    ray_ex.shutdown()
    with RayExecutor(workers=1) as one:
        t0 = time.perf_counter()
        run_search(searcher(tab), tab, n, executor=one)
        ray_ms = 1e3 * (time.perf_counter() - t0) / n
    print(
        f"tabular objective, {n} trials: local {loc_ms:.2f} ms/trial, Ray (1 worker) {ray_ms:.1f} ms/trial; "
        f"Ray overhead {ray_ms - loc_ms:.1f} ms per ask/tell round trip; load average {load()}"
    )


if __name__ == "__main__":
    main()
