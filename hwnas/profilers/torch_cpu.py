"""PyTorch eager mode on the local CPU: per-module isolation and whole-model forward / training step.

Mode ``inference`` runs the forward pass under ``torch.inference_mode`` in eval mode; mode ``train_step``
runs forward + backward of ``output.sum()`` in train mode with fresh gradients each call (the optimiser
update is left out: it depends on the optimiser, not the layer). The thread count is pinned with
``torch.set_num_threads`` for the whole profile and restored afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec
from hwnas.profilers.base import Profiler, Runner
from hwnas.profilers.memory import first_tensor


def make_runner(module: Any, inputs: tuple[Any, ...], mode: str) -> Runner:
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


class TorchCPUProfiler(Profiler):
    backend = "torch-cpu"
    supported_modes = ("inference", "train_step")

    def backend_versions(self) -> dict[str, str | None]:
        return {"torch": importlib.metadata.version("torch")}

    def profile(self, model: Any, store: Any, **kwargs: Any) -> Any:
        """As :meth:`Profiler.profile`; the model's train/eval mode is restored afterwards."""
        if kwargs.get("whole_model", True) and model.module is None:
            self._prepare(model, Path("."))  # raises the InputError before any layer is timed
        was = model.module.training if model.module is not None else None
        try:
            return super().profile(model, store, **kwargs)
        finally:
            if was is not None:
                model.module.train(was)

    @contextlib.contextmanager
    def _threads_pinned(self) -> Iterator[None]:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _layer_runner(self, spec: LayerSpec, mode: str) -> Runner:
        from hwnas.graph.builders.torch import build_layer_module, make_inputs

        return make_runner(build_layer_module(spec), make_inputs(spec), mode)

    def _prepare(self, model: Any, workdir: Path) -> dict[str, Any]:
        if model.module is None:
            raise InputError(
                f"model {model.name} is an ONNX file; the torch-cpu backend times whole models as torch "
                "modules",
                hint="profile ONNX files with --device local-cpu (onnxruntime), or use --no-whole-model",
            )
        return {"module": model.module, "input_shape": tuple(model.input_shape), "workdir": workdir}

    def _model_runner(self, ctx: dict[str, Any], mode: str) -> Runner:
        import torch

        x = torch.randn(*ctx["input_shape"], generator=torch.Generator().manual_seed(0))
        return make_runner(ctx["module"], (x,), mode)

    def _memory_job(self, ctx: dict[str, Any], mode: str) -> tuple[str, dict[str, Any]]:
        import torch

        path = ctx["workdir"] / "model.pt"
        if not path.exists():
            torch.save(ctx["module"], path)
        kwargs = {"path": str(path), "input_shapes": [list(ctx["input_shape"])], "mode": mode,
                  "threads": self.threads}  # fmt: skip
        return "hwnas.profilers.memory:run_torch", kwargs
