"""`hwnas analyze`: analytic costs (MACs, FLOPs, params, bytes) per layer and in total, without measuring."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import typer

from hwnas.cli._common import JSON_OPTION, err, fmt, out, print_json, table


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in s)


def _layer_row(layer: Any) -> dict[str, Any]:
    attrs = dict(layer.attrs)
    return {
        "name": layer.name,
        "op": layer.op,
        "key": layer.key(),
        "input_shape": list(layer.input_shape),
        "output_shape": list(layer.output_shape),
        "extra_input_shapes": [list(s) for s in layer.extra_input_shapes],
        "macs": layer.macs,
        "flops": layer.flops,
        "params": layer.params,
        "weight_bytes": layer.weight_bytes,
        "activation_bytes": layer.activation_bytes,
        "attrs": attrs,
    }


def _by_op(layers: list[Any]) -> list[list[Any]]:
    agg: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for layer in layers:
        a = agg[layer.op]
        a[0] += 1
        a[1] += layer.macs
        a[2] += layer.flops
        a[3] += layer.params
    total_macs = sum(v[1] for v in agg.values()) or 1
    rows = sorted(agg.items(), key=lambda kv: -kv[1][2])
    return [[op, n, macs, 100.0 * macs / total_macs, flops, params] for op, (n, macs, flops, params) in rows]


def analyze(
    model: str = typer.Option(
        ..., "--model", "-m", help="torchvision name, file.onnx, mbv2:<arch> or nb201:<arch>."
    ),
    input_shape: str | None = typer.Option(
        None, "--input-shape", help="Input shape, batch first, e.g. 1,3,224,224 (default: the model's)."
    ),
    batch_size: int = typer.Option(
        1, "--batch-size", "-b", min=1, max=65536, help="Batch size when no --input-shape."
    ),
    layers: bool = typer.Option(True, "--layers/--no-layers", help="Show the per-layer table."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Count MACs, FLOPs, parameters, weight and activation bytes per layer and in total, without running
    the model on a device. Conventions: MACs are conv/linear/SE multiply-accumulates; see the README."""
    from hwnas.graph.models import parse_input_shape, resolve_model
    from hwnas.resources import check_input_memory, requested_shape

    shape = parse_input_shape(input_shape)
    check_input_memory(requested_shape(shape, batch_size), "the input")
    resolved = resolve_model(model, shape, batch_size=batch_size)
    spec = resolved.spec
    totals = spec.totals()
    unknown = spec.unknown_layers
    if unknown:
        ops = sorted({str(layer.attr("source_op", "?")) for layer in unknown})
        err.print(
            f"warning: {len(unknown)} layer(s) with ops hwnas cannot cost ({', '.join(ops[:8])}); "
            "they are listed with op 'unknown' and count 0 in the totals",
            highlight=False,
        )
    if json_out:
        print_json(
            {
                "model": resolved.name,
                "model_id": resolved.model_id,
                "input_shape": list(resolved.input_shape),
                "source": spec.source,
                "num_layers": totals["layers"],
                "unknown_layers": totals["unknown_layers"],
                "macs": totals["macs"],
                "flops": totals["flops"],
                "params": totals["params"],
                "weight_bytes": totals["weight_bytes"],
                "peak_activation_bytes": totals["peak_activation_bytes"],
                "by_op": [
                    dict(zip(["op", "count", "macs", "macs_pct", "flops", "params"], r, strict=True))
                    for r in _by_op(spec.layers)
                ],
                "layers": [_layer_row(layer) for layer in spec.layers],
            }
        )
        return
    if layers:
        with_block = any(layer.attr("block") is not None for layer in spec.layers)
        cols = [
            "layer",
            *(["block"] if with_block else []),
            "op",
            "input",
            "output",
            "MACs",
            "FLOPs",
            "params",
            "act bytes",
        ]
        rows = [
            [
                layer.name,
                *([layer.attr("block", "")] if with_block else []),
                layer.op,
                _shape(layer.input_shape),
                _shape(layer.output_shape),
                layer.macs,
                layer.flops,
                layer.params,
                layer.activation_bytes,
            ]
            for layer in spec.layers
        ]
        out.print(table(f"{resolved.name}: layers", cols, rows))
    out.print(
        table(
            f"{resolved.name}: by op",
            ["op", "count", "MACs", "MACs %", "FLOPs", "params"],
            _by_op(spec.layers),
        )
    )
    out.print(
        f"{resolved.model_id}  input {_shape(resolved.input_shape)}  layers {totals['layers']}  "
        f"MACs {fmt(float(totals['macs']))}  FLOPs {fmt(float(totals['flops']))}  "
        f"params {fmt(float(totals['params']))}  weights {totals['weight_bytes'] / 2**20:.2f} MiB  "
        f"peak activations {totals['peak_activation_bytes'] / 2**20:.2f} MiB",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
