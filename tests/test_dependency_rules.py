"""The dependency rules of ARCHITECTURE.md hold: import-linter contracts (.importlinter), lean imports."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def test_import_contracts_kept():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]'); tools/test.sh runs it anyway")
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module", ["hwnas.store", "hwnas.store.records", "hwnas.graph", "hwnas.spaces"])
def test_light_imports_stay_light(module):
    code = f"import sys, {module}; print(sorted(m for m in ('pandas', 'torch', 'onnx') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=120, check=True).stdout.strip()  # fmt: skip
    assert out == "[]", f"importing {module} loads {out}"
