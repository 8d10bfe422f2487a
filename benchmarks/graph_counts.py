"""Analytic counts against fvcore and thop, and how long layer extraction takes.

Prints, per model: hwnas MACs / params, fvcore's conv+linear count and its total (which adds batch-norm and
pooling), thop's total, and the ratio hwnas/fvcore(conv+linear) (1.000 means identical counts); then the
time to extract layers from torch (fx), from ONNX, and for MobileNetV2-space points (analytic vs traced).

    .venv/bin/python benchmarks/graph_counts.py [--resolution 224] [--archs 20]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torchvision

MODELS = [
    "mobilenet_v2",
    "resnet18",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "shufflenet_v2_x1_0",
    "mnasnet1_0",
]


def _fvcore(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    from fvcore.nn import FlopCountAnalysis

    fa = FlopCountAnalysis(module, torch.randn(*shape))
    fa.unsupported_ops_warnings(False)
    fa.uncalled_modules_warnings(False)
    ops = fa.by_operator()
    return int(ops.get("conv", 0) + ops.get("linear", 0) + ops.get("addmm", 0)), int(fa.total())


def _thop(module: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    from thop import profile

    macs, params = profile(module, inputs=(torch.randn(*shape),), verbose=False)
    return int(macs), int(params)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--archs", type=int, default=20, help="MobileNetV2-space points to time")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")

    from hwnas.graph.builders.onnx import module_to_onnx
    from hwnas.graph.from_onnx import extract_layers_onnx
    from hwnas.graph.from_torch import extract_layers
    from hwnas.spaces.mbv2 import MBV2Space

    shape = (1, 3, args.resolution, args.resolution)
    print(f"input {shape}; MACs in millions")
    header = (
        "model",
        "hwnas MACs",
        "fvcore conv+lin",
        "ratio",
        "fvcore total",
        "thop total",
        "params",
        "thop params",
        "fx s",
        "onnx s",
    )
    print(("{:<20}" + "{:>16}" * (len(header) - 1)).format(*header))
    tmp = Path(tempfile.mkdtemp())
    for name in MODELS:
        module = torchvision.models.get_model(name, weights=None).eval()
        t0 = time.perf_counter()
        spec = extract_layers(module, shape)
        t_fx = time.perf_counter() - t0
        fv_cl, fv_total = _fvcore(module, shape)
        th_macs, th_params = _thop(module, shape)
        path = module_to_onnx(module, shape, tmp / f"{name}.onnx")
        t0 = time.perf_counter()
        extract_layers_onnx(path)
        t_onnx = time.perf_counter() - t0
        row = (
            name,
            f"{spec.macs / 1e6:.2f}",
            f"{fv_cl / 1e6:.2f}",
            f"{spec.macs / fv_cl:.4f}",
            f"{fv_total / 1e6:.2f}",
            f"{th_macs / 1e6:.2f}",
            spec.params,
            th_params,
            f"{t_fx:.2f}",
            f"{t_onnx:.2f}",
        )
        print(("{:<20}" + "{:>16}" * (len(row) - 1)).format(*row))

    space = MBV2Space(resolution=min(args.resolution, 128), seed=0)
    archs = [space.sample() for _ in range(args.archs)]
    t0 = time.perf_counter()
    for a in archs:
        space.layers(a)
    t_analytic = (time.perf_counter() - t0) / len(archs)
    n_traced = min(5, len(archs))
    t0 = time.perf_counter()
    for a in archs[:n_traced]:
        space.layers(a, method="trace")
    t_trace = (time.perf_counter() - t0) / n_traced
    print(
        f"\nMobileNetV2 space at {space.resolution}px: analytic layers {t_analytic * 1e3:.1f} ms/arch "
        f"({len(archs)} archs), traced {t_trace * 1e3:.0f} ms/arch ({n_traced} archs), "
        f"speed-up {t_trace / t_analytic:.0f}x"
    )


if __name__ == "__main__":
    main()
