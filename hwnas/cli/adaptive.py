"""``hwnas adaptive`` (also ``hwnas search --searcher adaptive``): design an adaptive DNN under a budget.

The command parses options and calls :func:`run_adaptive`, which wires the library pieces together:
the dataset split, the trainer (cached in the store), the edge/server cost functions (the devices'
profilers, whole-model latency, energy where a sensor exists), the problem and the searcher.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, STORE_OPTION, err, open_store, out, print_json, progress, table
from hwnas.errors import DeviceUnavailableError, InputError

SEARCHERS = ("bo+", "bo")


def parse_error_increase(text: str) -> float:
    """``3%`` or ``3`` → 3.0 percentage points."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*%?\s*", text or "")
    if not m:
        raise InputError(f"--max-error-increase {text!r}: expected a percentage such as 3% or 0.5%")
    return float(m.group(1))


def parse_energy_budget(texts: list[str]) -> float | None:
    from hwnas.searchers.constraints import parse_constraints

    cons = parse_constraints(texts)
    other = [str(c) for c in cons if c.name != "energy_mj" or c.op != "<="]
    if other:
        raise InputError(
            f"adaptive design takes one budget on energy, got {other}",
            hint="--constraint energy<=120mJ, or --max-error-increase 3% for the error-constrained form",
        )
    if cons and not (cons[0].budget > 0):
        raise InputError(f"energy budget must be > 0 mJ, got {cons[0].budget:g}")
    return cons[0].budget if cons else None


def run_adaptive(
    *,
    edge_device: str,
    server_device: str | None,
    link: str | None,
    energy_budget: float | None,
    max_error_increase: float | None,
    networks: int,
    searcher: str,
    evals: int,
    dataset: str | None,
    epochs: int,
    seed: int,
    edge_power_w: float | None,
    idle_power_w: float | None,
    store_path: Path | None,
    max_train: int | None = None,
    on_progress: Callable[[int, str], None] | None = None,
) -> dict[str, Any]:
    """Run one adaptive design and return its summary (library-style: no printing)."""
    from hwnas.searchers.adaptive import (
        AdaptiveBO,
        AdaptiveProblem,
        NetworkCosts,
        NetworkTrainer,
        best_design,
        link_from,
        load_design_data,
        run_design,
        static_design,
    )

    if (energy_budget is None) == (max_error_increase is None):
        raise InputError(
            "give exactly one budget",
            hint="--constraint energy<=120mJ (minimise error) or --max-error-increase 3% (minimise energy)",
        )
    if searcher not in SEARCHERS:
        raise InputError(f"unknown adaptive searcher {searcher!r}", hint=f"one of {', '.join(SEARCHERS)}")
    from hwnas.profilers.device_costs import stored_cost_fn

    store = open_store(store_path)
    edge_fn, has_energy, edge_cfg = stored_cost_fn(edge_device, store, want_energy=True)
    if not has_energy and edge_power_w is None:
        raise DeviceUnavailableError(
            f"device {edge_cfg.name} has no readable power sensor, so its energy cannot be measured",
            hint="give --edge-power-w W (its active power; energy = W x measured latency), "
            "or use a device with RAPL/NVML/rails",
        )
    server_fn, lk = None, None
    placement = "local"
    if server_device is not None:
        placement = "remote"
        server_fn, _, _ = stored_cost_fn(server_device, store, want_energy=False)
        lk = link_from(link or edge_cfg.connection.get("link") or None)
        if idle_power_w is None and edge_cfg.power.idle_power_mw is not None:
            idle_power_w = edge_cfg.power.idle_power_mw / 1e3
        if idle_power_w is None:
            raise InputError(
                f"remote execution needs the idle power of {edge_cfg.name}",
                hint="give --idle-power-w W, or power.idle_power_mw in its device config",
            )
    elif link is not None:
        raise InputError("--link needs --server-device (the link joins the edge to a server)")
    dd = load_design_data(dataset, seed=seed, max_train=max_train)
    trainer = NetworkTrainer(dd, epochs=epochs, seed=seed, cache=store,
                             progress=(lambda s: on_progress(0, s)) if on_progress else None)  # fmt: skip
    costs = NetworkCosts(trainer.build, dd.input_shape, edge_fn, server_cost_fn=server_fn,
                         edge_power_w=None if has_energy else edge_power_w, idle_power_w=idle_power_w,
                         link=lk)  # fmt: skip
    form = "energy" if energy_budget is not None else "error"
    budget = energy_budget if energy_budget is not None else max_error_increase
    problem = AdaptiveProblem(trainer, costs, n_networks=networks, form=form, budget=float(budget),
                              placement=placement)  # fmt: skip
    bo = AdaptiveBO(problem, plus=searcher == "bo+", seed=seed)

    def cb(trial: Any) -> None:
        if on_progress is not None:
            on_progress(1, f"eval {trial.number + 1}/{evals}")

    history = run_design(problem, bo, evals, callback=cb)
    static = static_design(problem)
    ref_design = problem.reference_error_pct("design")
    return {
        "searcher": bo.name,
        "problem": history.meta.get("problem"),
        "best": best_design(history),
        "static": static.to_dict() if static is not None else None,
        "reference_error_pct": ref_design,
        "networks_trained": trainer.train_count,
        "evaluations": len(history),
        "infeasible_evaluations": history.n_violations(),
        "dataset": dd.data.name,
        "history": history,
        "problem_obj": problem,
    }


def pareto_plot(summary: dict[str, Any], path: Path) -> Path:
    """Error vs energy of every evaluated design, its Pareto front, the static design (thesis fig. 4.2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwnas.searchers.adaptive import pareto_front
    from hwnas.searchers.adaptive.problem import DesignPoint

    pts = []
    for t in summary["history"].trials:
        d = t.info.get("design")
        if d:
            pts.append(DesignPoint(d["configs"], d["thresholds"], d["error_pct"], d["energy_mj"],
                                   d["latency_ms"], d["forwarded_fraction"]))  # fmt: skip
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.scatter([p.energy_mj for p in pts], [p.error_pct for p in pts], s=22, c="tab:red", alpha=0.7,
               label=f"{summary['searcher']} evaluations")  # fmt: skip
    front = pareto_front(pts)
    ax.plot(
        [p.energy_mj for p in front], [p.error_pct for p in front], "-", c="tab:green", label="Pareto front"
    )
    if summary.get("static"):
        s = summary["static"]
        ax.scatter([s["energy_mj"]], [s["error_pct"]], marker="s", s=60, c="tab:orange", label="static")
    if summary.get("best"):
        b = summary["best"]
        ax.scatter([b["energy_mj"]], [b["error_pct"]], marker="*", s=160, c="tab:blue", label="chosen")
    ax.set_xlabel("expected energy per image (mJ)")
    ax.set_ylabel("error on the design split (%)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from hwnas.io import atomic_output

    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def adaptive_command(
    edge_device: str = typer.Option(
        "local-cpu", "--edge-device", help="Device that runs N1 (a device config)."
    ),
    server_device: str | None = typer.Option(
        None, "--server-device", help="Run the later networks on this device (edge/server split, eq. 4.4)."
    ),
    link: str | None = typer.Option(
        None, "--link", help="Edge-server link preset: ethernet or wifi (default: the edge config's link)."
    ),
    constraint: list[str] = typer.Option(
        [],
        "--constraint",
        "-c",
        help="Energy budget per image, e.g. energy<=120mJ (eq. 4.1: minimise error).",
    ),
    max_error_increase: str | None = typer.Option(
        None, "--max-error-increase", help="Error budget over the reference network, e.g. 3% (eq. 4.2)."
    ),
    networks: int = typer.Option(2, "--networks", min=2, max=3, help="Networks in the cascade (2 or 3)."),
    searcher: str = typer.Option(
        "bo+", "--searcher", "-s", help="bo+ (with the θ sweep, Algorithm 1) or bo."
    ),
    evals: int = typer.Option(20, "--evals", "-n", min=1, max=10000, help="Trained network tuples."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Folder with cifar-10-batches-py/ or MNIST/ (torchvision layout); default digits.",
    ),
    epochs: int = typer.Option(6, "--epochs", min=1, max=1000, help="Training epochs per network."),
    seed: int = typer.Option(0, "--seed", help="Seed of the split, the training and the searcher."),
    edge_power_w: float | None = typer.Option(
        None, "--edge-power-w", min=0.0, help="Active power of the edge device (W), where it has no sensor."
    ),
    idle_power_w: float | None = typer.Option(
        None, "--idle-power-w", min=0.0, help="Idle power of the edge while it waits for the server (W)."
    ),
    max_train: int | None = typer.Option(None, "--max-train", min=10, help="Cap the training images."),
    history_out: Path | None = typer.Option(None, "--history", help="Write the search history (JSON)."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the error-vs-energy Pareto plot (PNG)."),
    store: Path | None = STORE_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Design an adaptive DNN (networks and score-margin thresholds) under an energy or error budget."""
    energy = parse_energy_budget(constraint)
    dl = parse_error_increase(max_error_increase) if max_error_increase is not None else None
    from hwnas.cli._common import store_file
    from hwnas.io import check_outputs

    check_outputs({"--history": history_out, "--plot": plot}, {"--store": store_file(store)})
    with progress("adaptive design", total=evals, enabled=not as_json) as advance:
        summary = run_adaptive(
            edge_device=edge_device, server_device=server_device, link=link, energy_budget=energy,
            max_error_increase=dl, networks=networks, searcher=searcher, evals=evals, dataset=dataset,
            epochs=epochs, seed=seed, edge_power_w=edge_power_w, idle_power_w=idle_power_w,
            store_path=store, max_train=max_train,
            on_progress=lambda n, d: advance(n, description=d),
        )  # fmt: skip
    history = summary.pop("history")
    summary.pop("problem_obj")
    if history_out is not None:
        from hwnas.io import atomic_output

        with atomic_output(history_out) as tmp:
            history.save_json(tmp)
        summary["history_file"] = str(history_out)
    if plot is not None:
        pareto_plot({**summary, "history": history}, plot)
        summary["plot"] = str(plot)
    if as_json:
        print_json(summary)
        return
    b, s = summary["best"], summary["static"]
    rows = []
    for name, d in (("chosen", b), ("static", s)):
        if d:
            rows.append([name, " > ".join(d["networks"]), ",".join(f"{t:.2f}" for t in d["thresholds"]),
                         d["error_pct"], d["test_error_pct"], d["energy_mj"], d["test_energy_mj"],
                         d["forwarded_fraction"]])  # fmt: skip
        else:
            rows.append([name, "no feasible design", "", "", "", "", "", ""])
    prob = summary["problem"]
    out.print(table(f"adaptive design ({prob['constraint']}, {prob['placement']})",
                    ["design", "networks", "θ", "error % (design)", "error % (test)", "energy mJ (design)",
                     "energy mJ (test)", "sent on"], rows))  # fmt: skip
    err.print(f"{summary['networks_trained']} network(s) trained; energy: "
              f"{summary['problem']['costs']['energy_source']}")  # fmt: skip


def register(app: typer.Typer) -> None:
    app.command("adaptive")(adaptive_command)
