"""Resolve what a user names as a model into a runnable module and/or ONNX file plus its layer list.

Accepted forms (``resolve_model``):
- a torchvision classification model name: ``mobilenet_v2``, ``resnet18``, ``torchvision:resnet18``
  (built with ``weights=None``: random weights, never a download);
- a path to an ``.onnx`` file;
- ``<family>:<rest>`` for a family a search space registered with :func:`register_model_family`:
  ``mbv2:<arch>`` / ``mbv2@<resolution>[w<width>]:<arch>`` and ``nb201:<arch string>`` are registered by
  ``hwnas.spaces`` (import it first; the CLI does). graph itself imports no other hwnas part.
"""

from __future__ import annotations

import hashlib
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import InputError
from hwnas.graph.layer import ModelSpec

_DEFAULT_RESOLUTION = {"inception_v3": 299}


@dataclass
class ResolvedModel:
    """A model ready for analysis and profiling: a torch module, an ONNX file, or both."""

    name: str
    model_id: str
    module: Any | None  # torch.nn.Module
    onnx_path: Path | None
    input_shape: tuple[int, ...]
    spec: ModelSpec

    def onnx(self, tmpdir: str | Path) -> Path:
        """The ONNX file of this model, exported into ``tmpdir`` the first time when only a module exists."""
        if self.onnx_path is not None:
            return self.onnx_path
        if self.module is None:  # pragma: no cover - a ResolvedModel always has one of the two
            raise InputError(f"model {self.name} has neither a module nor an ONNX file")
        from hwnas.graph.builders.onnx import module_to_onnx

        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model_id)[:60]
        digest = hashlib.sha1(self.model_id.encode()).hexdigest()[:8]  # long arch ids share prefixes
        shape = "x".join(str(s) for s in self.input_shape)
        path = Path(tmpdir) / f"{safe}_{digest}_{shape}.onnx"
        self.onnx_path = module_to_onnx(self.module, self.input_shape, path)
        return self.onnx_path


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` (or ``1x3x224x224``) → ``(1, 3, 224, 224)``; InputError naming the expected form."""
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip()
    shape: tuple[int, ...] = ()
    if re.fullmatch(r"\d+(\s*[,x×]\s*\d+)*", raw):
        shape = tuple(int(p) for p in re.split(r"\s*[,x×]\s*", raw))
    if not shape or any(s <= 0 for s in shape):
        raise InputError(
            f"input shape {text!r} is not valid", hint="give positive integers, batch first, e.g. 1,3,224,224"
        )
    return shape


def from_module(
    module: Any, input_shape: tuple[int, ...], name: str, model_id: str | None = None
) -> ResolvedModel:
    """Wrap an in-memory torch module (e.g. a search-space point) as a ResolvedModel."""
    from hwnas.graph.from_torch import extract_layers

    shape = tuple(int(s) for s in input_shape)
    spec = extract_layers(module, shape, name=name)
    return ResolvedModel(
        name=name, model_id=model_id or name, module=module, onnx_path=None, input_shape=shape, spec=spec
    )


def torchvision_names() -> list[str]:
    """Names of torchvision's image classification models."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _shape_for(
    input_shape: tuple[int, ...] | None, batch_size: int, default: tuple[int, ...]
) -> tuple[int, ...]:
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    return (int(batch_size), *default)


def _resolve_onnx(path: Path, input_shape: tuple[int, ...] | None, batch_size: int) -> ResolvedModel:
    from hwnas.graph.from_onnx import extract_layers_onnx

    if path.is_dir():
        raise InputError(f"ONNX file {path} is a directory, not a file", hint="give the .onnx file path")
    if not path.is_file():
        raise InputError(f"ONNX file {path} does not exist", hint="check the path")
    spec = extract_layers_onnx(path, input_shape=input_shape, batch_size=batch_size, name=path.name)
    return ResolvedModel(
        name=path.name,
        model_id=f"onnx:{path.name}@{_file_sha1(path)[:10]}",
        module=None,
        onnx_path=path.resolve(),
        input_shape=spec.input_shape,
        spec=spec,
    )


def _resolve_torchvision(name: str, input_shape: tuple[int, ...] | None, batch_size: int) -> ResolvedModel:
    import torchvision

    names = torchvision_names()
    if name not in names:
        close = [n for n in names if name.lower().replace("-", "_") in n][:5]
        examples = close or ["mobilenet_v2", "resnet18", "mobilenet_v3_small", "efficientnet_b0"]
        raise InputError(
            f"unknown model {name!r}: not a torchvision classification model, an .onnx file, "
            "'mbv2:<arch>' or 'nb201:<arch>'",
            hint="known names include " + ", ".join(examples) + f" ({len(names)} torchvision models in all)",
        )
    kwargs: dict[str, Any] = {"weights": None}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    module = torchvision.models.get_model(name, **kwargs).eval()
    res = _DEFAULT_RESOLUTION.get(name, 224)
    shape = _shape_for(input_shape, batch_size, (3, res, res))
    return from_module(module, shape, name, f"torchvision:{name}")


# model family name (the text before ":" up to any "@...") -> resolver(prefix, rest, input_shape, batch_size),
# or "module:function" imported on first use. The search spaces fill it (hwnas.spaces registers mbv2 and
# nb201): graph imports no other hwnas part.
ModelResolver = Callable[[str, str, "tuple[int, ...] | None", int], ResolvedModel]
_FAMILIES: dict[str, ModelResolver | str] = {}


def register_model_family(family: str, resolver: ModelResolver | str) -> None:
    """Make ``<family>[@...]:<rest>`` model names resolve through ``resolver(prefix, rest, shape, batch)``."""
    _FAMILIES[family] = resolver


def model_families() -> list[str]:
    return sorted(_FAMILIES)


def _family_resolver(family: str) -> ModelResolver | None:
    ref = _FAMILIES.get(family)
    if ref is None or callable(ref):
        return ref
    module, attr = ref.split(":")
    fn = getattr(importlib.import_module(module), attr)
    _FAMILIES[family] = fn
    return fn


def resolve_model(
    text: str, input_shape: tuple[int, ...] | None = None, batch_size: int = 1
) -> ResolvedModel:
    """Turn a model name, ONNX path or search-space point into a ResolvedModel (see the module doc).

    ``input_shape`` (batch first) overrides the default (``batch_size``×3×224×224 for torchvision models,
    the file's own shape for ONNX, 32×32 for NAS-Bench-201). InputError for a missing or corrupt file or
    an unknown name.
    """
    text = str(text).strip()
    if not text:
        raise InputError(
            "no model given", hint="e.g. --model mobilenet_v2, --model net.onnx or --model mbv2:<arch>"
        )
    if input_shape is not None:
        input_shape = tuple(int(s) for s in input_shape)
        if not input_shape or any(s <= 0 for s in input_shape):
            raise InputError(f"input shape {input_shape} is not valid", hint="e.g. 1,3,224,224")
    if text.lower().endswith(".onnx") or Path(text).suffix == ".onnx":
        return _resolve_onnx(Path(text), input_shape, batch_size)
    prefix, sep, rest = text.partition(":")
    if sep:
        family = re.split(r"[@]", prefix, maxsplit=1)[0]
        resolver = _family_resolver(family)
        if resolver is not None:
            return resolver(prefix, rest, input_shape, batch_size)
        if family in ("mbv2", "nb201"):
            raise InputError(
                f"model family {family!r} is not registered",
                hint="import hwnas.spaces first (it registers mbv2: and nb201:); "
                f"registered: {', '.join(model_families()) or 'none'}",
            )
        if prefix == "torchvision":
            return _resolve_torchvision(rest, input_shape, batch_size)
        if prefix == "onnx":
            return _resolve_onnx(Path(rest), input_shape, batch_size)
    if Path(text).is_file():
        return _resolve_onnx(Path(text), input_shape, batch_size)
    return _resolve_torchvision(text, input_shape, batch_size)
