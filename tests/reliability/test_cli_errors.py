"""Every CLI command, given bad arguments, ends in ``error: ... hint: ...`` with the documented exit code
and no traceback (issue 23, findings 1, 7 and 9). Commands are read from the app, so commands added
later are covered by the generic cases too."""

from __future__ import annotations

import os
import sys

import pytest
import typer
import typer.main
import yaml

from hwnas.cli import app as app_module
from hwnas.cli.app import app, main


def _leaves(group, prefix=()):
    """Every runnable command, groups walked down to their subcommands (``parse tegrastats``)."""
    out = {}
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            out[" ".join(path)] = None  # the group itself
            out.update(_leaves(cmd, path))
        else:
            out[" ".join(path)] = cmd
    return out


LEAVES = _leaves(typer.main.get_command(app))
COMMANDS = sorted(LEAVES)


def _run(capsys, args):
    code = main(args)
    captured = capsys.readouterr()
    return code, " ".join(captured.err.split()), captured.out


def _assert_clean(code, err, want_code, *needles):
    assert code == want_code, err
    assert "error:" in err and "hint:" in err, err
    assert "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)


def test_the_app_has_the_commands_the_readme_lists():
    assert {"devices", "analyze", "profile", "show", "export", "fit", "evaluate", "predict",
            "predict-device", "suggest-samples", "search", "compare-searchers"} <= set(COMMANDS)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_rejects_an_unknown_option(capsys, command):
    code, err, out = _run(capsys, [*command.split(), "--no-such-option"])
    _assert_clean(code, err, 2, f"error: hwnas {command}: No such option: --no-such-option",
                  f"hwnas {command} --help")  # fmt: skip
    assert out == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_rejects_a_missing_or_bad_value(capsys, command):
    """A required option left out, or (commands without one) an option given without its value."""
    cmd = LEAVES[command]
    if cmd is None:  # a group: an unknown subcommand is the bad input
        code, err, _ = _run(capsys, [*command.split(), "no-such-subcommand"])
        _assert_clean(code, err, 2, "No such command")
        return
    required = [p for p in cmd.params if p.required]
    if required:
        code, err, _ = _run(capsys, command.split())
        _assert_clean(code, err, 2, "Missing")  # an option ('--model') or an argument ('FILE')
        assert required[0].opts[0] in err or required[0].name in err
    else:
        valued = [p for p in cmd.params if not getattr(p, "is_flag", False) and p.opts[0].startswith("--")]
        if not valued:  # e.g. `devices`: only flags; an extra argument is the bad input
            code, err, _ = _run(capsys, [*command.split(), "extra-argument"])
            _assert_clean(code, err, 2, "Got unexpected extra argument")
            return
        code, err, _ = _run(capsys, [*command.split(), valued[0].opts[0]])
        _assert_clean(code, err, 2, "requires an argument")


def test_bare_hwnas_and_unknown_command(capsys):
    code, err, _ = _run(capsys, [])
    _assert_clean(code, err, 2, "no command")
    code, err, _ = _run(capsys, ["no-such-command"])
    _assert_clean(code, err, 2, "No such command")


@pytest.fixture
def table_csv(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.uniform(1, 5, 60), "b": rng.uniform(1, 5, 60)})
    df["y"] = 2 * df["a"] + df["b"]
    path = tmp_path / "T.csv"
    df.to_csv(path, index=False)
    return path


def _yaml(tmp_path, **fields):
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump({"name": "d", "backend": "onnxruntime-cpu", **fields}))
    return str(path)


BAD_VALUES = [
    (["profile", "-m", "resnet18", "-b", "0"], "--batch-size"),
    (["profile", "-m", "resnet18", "-b", "100000"], "--batch-size"),
    (["profile", "-m", "resnet18", "--threads", "100000"], "--threads"),
    (["profile", "-m", "resnet18", "--input-shape", "1,3,0,4"], "input shape"),
    (["analyze", "-m", "resnet18", "-b", "0"], "--batch-size"),
    (["predict", "--table", "t.json", "-b", "0"], "--batch-size"),
    (["predict", "--table", "t.json", "--budget", "-1"], "--budget"),
    (["predict", "--table", "t.json", "--budget", "inf"], "--budget"),
    (["suggest-samples", "--k", "0"], "--k"),
    (["suggest-samples", "--k", "20000"], "--k"),
    (["search", "--objective", "hyperpower-digits", "-c", "latency<=-5ms"], "upper bound must be > 0"),
    (["search", "--objective", "hyperpower-digits", "-c", "latency<=0ms"], "upper bound must be > 0"),
    (["search", "--objective", "hyperpower-digits", "-c", "latency<=1e999ms"], "not a finite number"),
    (["search", "--evals", "0"], "--evals"),
    (["compare-searchers", "--objective", "nb201", "--tolerance", "-1"], "--tolerance"),
    (["compare-searchers", "--objective", "nb201", "--seeds", "0"], "--seeds"),
    (["export", "--format", "xml", "--out", "x.xml"], "--format"),
    (["evaluate", "--table", "t.json", "--min-within10", "2"], "--min-within10"),
    (["fit", "--out", "o.json", "--n-estimators", "0"], "--n-estimators"),
]


@pytest.mark.parametrize("args,needle", BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_out_of_range_values_are_refused(capsys, tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    code, err, _ = _run(capsys, args)
    _assert_clean(code, err, 2, needle)


@pytest.mark.parametrize("holdout", ["1.5", "0", "1", "-0.2", "nan"])
def test_fit_holdout_outside_0_1_is_refused(capsys, tmp_path, table_csv, holdout):
    args = ["fit", "--data", str(table_csv), "--target", "y", "--kind", "linear",
            "--out", str(tmp_path / "o.json"), "--holdout", holdout]  # fmt: skip
    code, err, _ = _run(capsys, args)
    _assert_clean(code, err, 2, "--holdout")
    assert not (tmp_path / "o.json").exists()


def test_threads_beyond_this_machine_are_refused(capsys):
    from hwnas.resources import THREADS_PER_CPU, cpu_count

    n = THREADS_PER_CPU * cpu_count() + 1
    if n > 1024:
        pytest.skip("a machine with more than 256 CPUs")
    code, err, _ = _run(capsys, ["profile", "-m", "resnet18", "--threads", str(n)])
    _assert_clean(code, err, 2, "CPU(s)")


def test_a_batch_that_cannot_fit_in_memory_is_refused_before_building(capsys):
    from hwnas.resources import available_memory_bytes

    if available_memory_bytes() is None:
        pytest.skip("/proc/meminfo unreadable")
    code, err, _ = _run(capsys, ["profile", "-m", "resnet18", "-b", "60000"])
    _assert_clean(code, err, 2, "GiB", "--batch-size")


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({"repeat": {"warmup": 1e30}}, "repeat.warmup"),
        ({"repeat": {"max_seconds": float("inf")}}, "repeat.max_seconds"),
        ({"repeat": {"target_ci_rel": float("nan")}}, "repeat.target_ci_rel"),
        ({"batch_size": 1e12}, "batch_size"),
        ({"threads": 100000}, "threads"),
        ({"power": {"sampling_hz": float("inf")}}, "power.sampling_hz"),
    ],
)
def test_device_yaml_fields_are_range_checked(capsys, tmp_path, fields, needle):
    code, err, _ = _run(capsys, ["profile", "-d", _yaml(tmp_path, **fields), "-m", "resnet18"])
    assert code == 2 and "error:" in err and needle in err and "Traceback" not in err


def test_device_yaml_file_system_errors(capsys, tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\nbackend: onnxruntime-cpu\n".encode("latin-1"))
    code, err, _ = _run(capsys, ["profile", "-d", str(latin), "-m", "resnet18"])
    _assert_clean(code, err, 2, "not UTF-8")
    folder = tmp_path / "dir.yaml"
    folder.mkdir()
    code, err, _ = _run(capsys, ["profile", "-d", str(folder), "-m", "resnet18"])
    _assert_clean(code, err, 2, "is a directory")
    code, err, _ = _run(capsys, ["profile", "-d", str(tmp_path / "missing.yaml"), "-m", "resnet18"])
    _assert_clean(code, err, 2, "file not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_device_yaml(capsys, tmp_path):
    path = _yaml(tmp_path)
    os.chmod(path, 0)
    code, err, _ = _run(capsys, ["profile", "-d", path, "-m", "resnet18"])
    _assert_clean(code, err, 2, "permission denied")


def test_a_directory_named_like_an_onnx_file_is_called_a_directory(capsys, tmp_path):
    (tmp_path / "x.onnx").mkdir()
    for command in ("analyze", "profile"):
        code, err, _ = _run(capsys, [command, "-m", str(tmp_path / "x.onnx")])
        _assert_clean(code, err, 2, "is a directory")
        assert "does not exist" not in err


def test_evaluate_says_when_the_target_is_not_the_tables_metric(capsys, tmp_path, table_csv):
    import pandas as pd

    df = pd.read_csv(table_csv)
    other = tmp_path / "other.csv"
    df.assign(z=df["y"] * 1.5).drop(columns=["y"]).to_csv(other, index=False)
    out = tmp_path / "t.json"
    args = ["fit", "--data", str(table_csv), "--target", "y", "--kind", "linear", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    code = main(["evaluate", "--table", str(out), "--data", str(other), "--target", "z", "--include-fitted"])
    assert code == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning" in err and "'y'" in err and "'z'" in err


# --- the fallback handler itself ------------------------------------------------------------------------


def test_fallback_handler_finds_the_click_of_the_installed_typer():
    """Typer >= 0.29 bundles its own click and no longer installs the package: the handler must take the
    exception classes from typer itself, whatever is installed."""
    click_exc, usage = app_module._click_bases()
    assert issubclass(typer.BadParameter, usage) and issubclass(usage, click_exc)
    src = open(app_module.__file__, encoding="utf-8").read()
    assert "import click" not in src


def _throwaway_app(exc: BaseException) -> typer.Typer:
    t = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @t.command("boom")
    def boom(n: int = typer.Option(1, "--n", min=1)) -> None:
        raise exc

    @t.command("other")
    def other() -> None: ...

    return t


@pytest.mark.parametrize(
    "exc,code,needles",
    [
        (typer.BadParameter("bad thing"), 2, ["bad thing", "hint:"]),
        (RuntimeError("kaboom"), 2, ["internal error: RuntimeError: kaboom", "--debug"]),
        (PermissionError(13, "Permission denied", "/x/y.csv"), 2, ["/x/y.csv: Permission denied"]),
        (IsADirectoryError(21, "Is a directory", "/x"), 2, ["/x: Is a directory", "directory"]),
        (MemoryError(), 2, ["out of memory", "--batch-size"]),
        (UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, ["not UTF-8"]),
    ],
)
def test_fallback_handler_with_the_installed_typer(capsys, monkeypatch, exc, code, needles):
    monkeypatch.setattr(app_module, "app", _throwaway_app(exc))
    monkeypatch.setitem(sys.modules, "click", None)  # `import click` would fail, as on a fresh install
    got, err, _ = _run(capsys, ["boom"])
    _assert_clean(got, err, code, *needles)
    got, err, _ = _run(capsys, ["boom", "--n", "0"])  # a usage error from typer's own click
    _assert_clean(got, err, 2, "--n")


def test_unexpected_errors_in_real_commands_and_debug(capsys, monkeypatch):
    import hwnas.device_config

    def broken():
        raise RuntimeError("kaboom")

    monkeypatch.setattr(hwnas.device_config, "list_configs", broken)
    code, err, _ = _run(capsys, ["devices"])
    _assert_clean(code, err, 2, "internal error: RuntimeError: kaboom", "--debug")
    code = main(["--debug", "devices"])
    captured = capsys.readouterr()
    assert code == 2 and "Traceback" in captured.err and "kaboom" in captured.err


def test_sigterm_exits_143_and_runs_cleanups(capsys, monkeypatch, tmp_path):
    import signal
    import tempfile

    made = []

    def work() -> None:
        with tempfile.TemporaryDirectory(prefix="hwnas-prof-", dir=tmp_path) as d:
            made.append(d)
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("not reached")

    t = typer.Typer(add_completion=False)
    t.command("work")(work)
    t.command("other")(lambda: None)
    monkeypatch.setattr(app_module, "app", t)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = main(["work"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143
    assert made and not os.path.exists(made[0])
    assert "terminated" in capsys.readouterr().err
