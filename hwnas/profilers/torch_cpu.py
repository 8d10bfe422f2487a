"""PyTorch eager mode on the local CPU: builder (modules + inputs) and in-process runner; no fusion.

Mode ``inference`` runs the forward pass under ``torch.inference_mode`` in eval mode; mode ``train_step``
runs forward + backward of ``output.sum()`` in train mode with fresh gradients each call (the optimiser
update is left out: it depends on the optimiser, not the layer). The thread count is pinned with
``torch.set_num_threads`` for the whole profile and restored afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.device_config import DeviceConfig
from hwnas.errors import InputError
from hwnas.graph.fusion import Unit
from hwnas.profilers.backend import Backend, Builder, Copies, InProcessRunner, register_backend
from hwnas.profilers.base import Profiler
from hwnas.profilers.memory import first_tensor


def make_runner(module: Any, inputs: tuple[Any, ...], mode: str) -> Callable[[], object]:
    """One call = one forward (inference) or one forward + backward (train_step) of ``module``."""
    import torch

    if mode == "inference":
        module.eval()

        def infer() -> None:
            with torch.inference_mode():
                module(*inputs)

        return infer
    module.train()
    inputs = tuple(x.detach().requires_grad_(x.is_floating_point()) for x in inputs)
    params = [p for p in module.parameters() if p.requires_grad]

    def step() -> None:
        for p in params:
            p.grad = None
        for x in inputs:
            x.grad = None
        out = first_tensor(module(*inputs))
        if out.requires_grad:  # a layer that ignores its input (e.g. the NB201 "zero" op) has no backward
            out.float().sum().backward()

    return step


@dataclass
class TorchArtefact:
    """A module and the inputs one run feeds it."""

    module: Any
    inputs: tuple[Any, ...]


class TorchBuilder(Builder):
    def unit(self, unit: Unit) -> TorchArtefact:
        from hwnas.graph.builders.torch import build_unit_module, make_unit_inputs

        return TorchArtefact(build_unit_module(unit), make_unit_inputs(unit))

    def copies(self, unit: Unit, n: int) -> Copies:
        first = self.unit(unit)
        rest = [TorchArtefact(self.unit(unit).module, first.inputs) for _ in range(n - 1)]
        return Copies((first, *rest))

    def check_model(self, model: Any) -> None:
        if model.module is None:
            raise InputError(
                f"model {model.name} is an ONNX file; the torch-cpu backend times whole models as torch "
                "modules",
                hint="profile ONNX files with --device local-cpu (onnxruntime), or use --no-whole-model",
            )

    def model(self, model: Any, workdir: Path) -> TorchArtefact:
        import torch

        self.check_model(model)
        x = torch.randn(*tuple(model.input_shape), generator=torch.Generator().manual_seed(0))
        return TorchArtefact(model.module, (x,))


class TorchRunner(InProcessRunner):
    peak_memory = True
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def callable(self, artefact: TorchArtefact, mode: str) -> Callable[[], object]:
        return make_runner(artefact.module, artefact.inputs, mode)

    def memory_job(self, artefact: TorchArtefact, mode: str, workdir: Path) -> tuple[str, dict[str, Any]]:
        import torch

        path = workdir / "model.pt"
        if not path.exists():
            torch.save(artefact.module, path)
        kwargs = {"path": str(path), "input_shapes": [list(x.shape) for x in artefact.inputs], "mode": mode,
                  "threads": self.threads}  # fmt: skip
        return "hwnas.profilers.memory:run_torch", kwargs


def _versions() -> dict[str, str | None]:
    return {"torch": importlib.metadata.version("torch")}


def _probe(config: DeviceConfig) -> tuple[bool, str]:
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    return True, "torch on the local CPU"


class TorchCPUProfiler(Profiler):
    backend = "torch-cpu"

    def profile_many(self, models: Any, store: Any, **kwargs: Any) -> Any:
        """As :meth:`Profiler.profile_many`; each model's train/eval mode is restored afterwards."""
        was = [(m.module, m.module.training) for m in models if m.module is not None]
        try:
            return super().profile_many(models, store, **kwargs)
        finally:
            for module, training in was:
                module.train(training)


register_backend(Backend(
    name="torch-cpu",
    builder=TorchBuilder,
    runner=TorchRunner,
    probe=_probe,
    versions=_versions,
    modes=("inference", "train_step"),
    fusion="none",  # eager mode runs every module as its own kernel(s)
    fingerprint="local-cpu",
    profiler=TorchCPUProfiler,
    description="PyTorch eager mode in this process",
))  # fmt: skip
