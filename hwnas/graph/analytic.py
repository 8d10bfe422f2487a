"""Analytic costs of a LayerSpec: MACs, FLOPs, parameters, weight and activation bytes.

Conventions (documented in the README, "Counting conventions"):
- MACs count multiply-accumulates of conv2d, linear/matmul and the two 1×1 projections of an SE block;
  biases are not MACs. This is what fvcore and thop call "flops" for conv and linear layers.
- FLOPs = 2·MACs + one FLOP per output element of element-wise work (bias add, batch-norm counts 2
  per element: scale and shift; activations, add and mul 1; pooling one per window element read).
- params count weights and biases; batch-norm counts its affine scale and shift (2·C), not its running
  statistics (buffers), as torch's ``parameters()`` does; layer-norm counts 5 FLOPs per element (mean,
  variance, normalise, scale, shift) and its affine weight and bias.
- activation bytes = (input + extra inputs + output elements) × dtype bytes; weight bytes = params × dtype.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hwnas.graph.layer import ACTIVATION_OPS, LayerSpec


def _numel(shape: tuple[int, ...]) -> int:
    return int(math.prod(shape)) if shape else 0


def layer_macs_params(spec: LayerSpec) -> tuple[int, int, int]:
    """(MACs, FLOPs, params) of one layer by the conventions above; unknown ops cost 0 (and are flagged)."""
    op = spec.op
    out_elems = _numel(spec.output_shape)
    in_elems = _numel(spec.input_shape)
    if op == "conv2d":
        cin = int(spec.in_channels or spec.input_shape[1])
        cout = int(spec.out_channels or spec.output_shape[1])
        kh, kw = spec.kernel or (1, 1)
        per_out = (cin // max(spec.groups, 1)) * kh * kw
        macs = out_elems * per_out
        params = cout * per_out + (cout if spec.bias else 0)
        flops = 2 * macs + (out_elems if spec.bias else 0)
        return macs, flops, params
    if op == "linear":
        fin = int(spec.in_channels or spec.input_shape[-1])
        fout = int(spec.out_channels or spec.output_shape[-1])
        rows = _numel(spec.input_shape[:-1])
        macs = rows * fin * fout
        params = fin * fout + (fout if spec.bias else 0)
        return macs, 2 * macs + (rows * fout if spec.bias else 0), params
    if op == "matmul":
        inner = int(spec.attr("inner_dim", spec.input_shape[-1]))
        macs = out_elems * inner
        return macs, 2 * macs, 0
    if op == "se":
        c = int(spec.in_channels or spec.input_shape[1])
        s = int(spec.attr("squeeze_channels", max(1, round(c * (spec.se_ratio or 0.25)))))
        n = spec.batch_size
        macs = n * (c * s + s * c)
        params = c * s + s + s * c + c
        # pool (read every input element), two projections, two activations, the channel-wise scale.
        flops = in_elems + 2 * macs + n * (s + c) + out_elems
        return macs, flops, params
    if op == "layernorm":
        # normalise over the last ``norm_dims`` dims: mean, variance, normalise, scale and shift
        norm = _numel(spec.input_shape[-int(spec.attr("norm_dims", 1)) :])
        affine = spec.attr("affine", True)
        return 0, 5 * out_elems, (norm * (2 if spec.bias else 1)) if affine else 0
    if op == "batchnorm":
        c = int(spec.in_channels or spec.input_shape[1])
        return 0, 2 * out_elems, 2 * c
    if op in ACTIVATION_OPS or op in ("add", "mul"):
        return 0, out_elems * max(1, len(spec.extra_input_shapes)), 0
    if op in ("maxpool2d", "avgpool2d"):
        kh, kw = spec.kernel or (1, 1)
        return 0, out_elems * kh * kw, 0
    if op == "global_avgpool":
        return 0, in_elems, 0
    return 0, 0, 0


def fill_costs(spec: LayerSpec) -> LayerSpec:
    """Return ``spec`` with macs, flops, params, weight_bytes and activation_bytes computed."""
    macs, flops, params = layer_macs_params(spec)
    act = (
        _numel(spec.input_shape) + _numel(spec.output_shape) + sum(_numel(s) for s in spec.extra_input_shapes)
    )
    return replace(
        spec,
        macs=int(macs),
        flops=int(flops),
        params=int(params),
        weight_bytes=int(params) * spec.dtype_bytes,
        activation_bytes=int(act) * spec.dtype_bytes,
    )
