"""Differentiable costs (torch) for gradient-based NAS.

Three formulations, each faithful to its source:

(a) **Expected cost under choice weights** (FBNet / ProxylessNAS): with per-layer architecture logits α
    and candidate costs c (from a cost table), ``E[cost] = Σ_l Σ_k w_lk · c_lk``, where ``w`` is a softmax
    or a Gumbel-softmax (Wan thesis eq. 3.4: ``g_i = exp((α_i + ε_i)/τ) / Σ_j exp((α_j + ε_j)/τ)``).
(b) **Single-Path runtime model** (Stamoulis thesis eq. 5.8–5.10, and 6.5–6.8 with SE paths): per-layer
    runtime as a function of threshold decisions on superkernel weight norms; the indicator
    ``1(x > t)`` is relaxed to a sigmoid for gradients.
(c) **Effective-shape FLOPs and params** (Wan thesis eq. 3.5–3.10, FBNetV2 / DMaskingNAS): effective
    channels and spatial size are Gumbel-weighted sums of the options and propagate layer to layer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hwnas.errors import InputError

# --------------------------------------------------------------------------------------------------------
# (a) expected cost under softmax / Gumbel-softmax weights
# --------------------------------------------------------------------------------------------------------


def gumbel_softmax_weights(
    alpha: torch.Tensor,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Wan eq. 3.4 over the last dimension: ``softmax((α + ε) / τ)`` with Gumbel noise ε.

    ``noise`` fixes ε (for tests); otherwise ε = −log(−log U), U ~ Uniform(0, 1) from ``generator``.
    """
    if tau <= 0:
        raise ValueError(f"temperature tau must be > 0, got {tau}")
    if noise is None:
        u = torch.rand(alpha.shape, generator=generator, dtype=alpha.dtype, device=alpha.device)
        u = u.clamp(torch.finfo(alpha.dtype).tiny, 1.0 - torch.finfo(alpha.dtype).eps)
        noise = -torch.log(-torch.log(u))
    return torch.softmax((alpha + noise) / tau, dim=-1)


def choice_weights(
    alpha: torch.Tensor, mode: str = "softmax", tau: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-layer choice weights from logits: ``softmax`` (ProxylessNAS/DARTS expectation) or ``gumbel``."""
    if mode == "softmax":
        return torch.softmax(alpha / tau, dim=-1)
    if mode == "gumbel":
        return gumbel_softmax_weights(alpha, tau, generator)
    raise ValueError(f"mode must be 'softmax' or 'gumbel', got {mode!r}")


def expected_cost(
    weights: torch.Tensor, costs: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``Σ_l Σ_k w_lk · c_lk`` (FBNet's LAT(a) = Σ_l Σ_i m_l,i · LAT(b_l,i)).

    ``weights`` and ``costs`` are [L, K]; ``mask`` (bool [L, K]) marks padding when layers have fewer
    than K candidates (masked entries contribute nothing).
    """
    if weights.shape != costs.shape:
        raise ValueError(f"weights {tuple(weights.shape)} and costs {tuple(costs.shape)} differ in shape")
    prod = weights * costs
    if mask is not None:
        prod = torch.where(mask, prod, torch.zeros_like(prod))
    return prod.sum()


def cost_matrix(
    table: Any, candidates: Sequence[Sequence[Any]], dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate costs from a cost table or a :class:`LayerCostPredictor` (one path:
    :func:`~hwnas.cost_models.interface.candidate_cost_matrix`): ``candidates[l][k]`` is a LayerSpec, a
    list of LayerSpecs (a block: costs add up) or ``None`` (a skip: 0). Returns (costs [L, K], mask
    [L, K]), padded to the widest layer."""
    from hwnas.cost_models.interface import LayerCostPredictor, candidate_cost_matrix

    if not candidates:
        raise InputError("no candidate layers given")
    if isinstance(table, LayerCostPredictor):
        predictor = table
    else:
        from hwnas.cost_models.predictors import TablePredictor

        predictor = TablePredictor(table)
    return candidate_cost_matrix(predictor, predictor.cost_names[0], candidates, dtype=dtype)


class ExpectedCost(nn.Module):
    """``nn.Module`` form of (a): holds the [L, K] cost table as a buffer; forward(α) → E[cost]."""

    def __init__(
        self, costs: torch.Tensor, mask: torch.Tensor | None = None, mode: str = "softmax", tau: float = 1.0
    ) -> None:
        super().__init__()
        self.register_buffer("costs", costs.detach().clone())
        self.register_buffer(
            "mask", mask.clone() if mask is not None else torch.ones_like(costs, dtype=torch.bool)
        )
        self.mode = mode
        self.tau = tau

    def forward(self, alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        # Padding candidates get -inf logits so they carry no weight.
        logits = alpha.masked_fill(~self.mask, float("-inf"))
        w = choice_weights(logits, self.mode, self.tau, generator)
        return expected_cost(w, self.costs.to(w.dtype), self.mask)


# --------------------------------------------------------------------------------------------------------
# (b) Single-Path NAS runtime model
# --------------------------------------------------------------------------------------------------------


def indicator(
    x: torch.Tensor, t: torch.Tensor | float, mode: str = "ste", temperature: float = 1.0
) -> torch.Tensor:
    """``1(x > t)`` with a differentiable relaxation (Stamoulis thesis, after eq. 5.2 and 5.10).

    - ``hard``: the step itself (no gradient);
    - ``sigmoid``: ``σ((x − t)/temperature)`` in value and gradient;
    - ``ste``: the step in the forward pass, the sigmoid's gradient in the backward pass (what the
      Single-Path NAS code does: ``stop_gradient(step − σ) + σ``).
    """
    z = (x - t) / temperature
    soft = torch.sigmoid(z)
    if mode == "sigmoid":
        return soft
    hard = (z > 0).to(soft.dtype)
    if mode == "hard":
        return hard
    if mode == "ste":
        return (hard - soft).detach() + soft
    raise ValueError(f"mode must be 'hard', 'sigmoid' or 'ste', got {mode!r}")


# Choice codes of the Single-Path table (README of the Pixel 1 table): (kernel, expansion).
SINGLE_PATH_CODES: dict[tuple[int, int], int] = {(3, 3): 0, (3, 6): 1, (5, 3): 2, (5, 6): 3}
PIXEL1_FIXED_MS = 19.5999


def single_path_layer_runtime(
    r: torch.Tensor, i_e3: torch.Tensor, i_e6: torch.Tensor, i_k5: torch.Tensor
) -> torch.Tensor:
    """Eq. 5.9–5.10 for layers in parallel. ``r`` is [L, 4] in code order (3×3-3, 3×3-6, 5×5-3, 5×5-6).

    R_e = 1(e3) · (R_5x5,3 + 1(e6) · (R_5x5,6 − R_5x5,3))                      (5.9)
    R   = (R_3x3,6 / R_5x5,6) · R_e + R_e · (1 − R_3x3,6 / R_5x5,6) · 1(k5)      (5.10)
    """
    r33_6, r55_3, r55_6 = r[..., 1], r[..., 2], r[..., 3]
    r_e = i_e3 * (r55_3 + i_e6 * (r55_6 - r55_3))
    ratio = r33_6 / r55_6
    return ratio * r_e + r_e * (1.0 - ratio) * i_k5


def single_path_se_runtime(
    r_ke: torch.Tensor, s: torch.Tensor, i_se: torch.Tensor, i_e6: torch.Tensor, i_k5: torch.Tensor
) -> torch.Tensor:
    """Eq. 6.5–6.8: runtime with a searchable Squeeze-and-Excitation path.

    ``r_ke`` is eq. 5.10's R^i (no SE); ``s`` is [L, 4] of scaling factors s^i_{k,e,0.25} =
    R^i_{k×k,e,se=0.25} / R^i_{k×k,e,se=0} (eq. 6.5) in code order. The thesis takes s_{k,e,0.25} ≈
    s_{k,e,0.5}, so only whether the SE path is used matters for runtime:

        s^i_{k,e=6} = 1(k5) · s^i_{5,6} + (1 − 1(k5)) · s^i_{3,6}                     (6.6)
        s^i_{k,e=3} = 1(k5) · s^i_{5,3} + (1 − 1(k5)) · s^i_{3,3}                     (6.7)
        R^i = (1 − 1(se)) · R^i_{k,e}
              + 1(se) · {1(e6) · s^i_{k,e=6} + (1 − 1(e6)) · s^i_{k,e=3}} · R^i_{k,e}       (6.8)

    Reconstruction of (6.8), whose PDF text is garbled: here 1(se) = 1(‖w_0.25‖² > t_se=0.25), the
    outer decision of eq. 6.3 (use an SE path at all); the garbled text prints the norm of w_{0.5\\0.25}
    next to t_se=0.25, which eq. 6.3 pairs with t_se=0.5, a choice the thesis says leaves runtime
    unchanged (s_0.25 ≈ s_0.5). The braces select the SE scaling of the chosen expansion ratio, and a
    skipped layer (R_{k,e} = 0) stays 0.
    """
    s_e6 = i_k5 * s[..., 3] + (1.0 - i_k5) * s[..., 1]
    s_e3 = i_k5 * s[..., 2] + (1.0 - i_k5) * s[..., 0]
    scale = i_e6 * s_e6 + (1.0 - i_e6) * s_e3
    return (1.0 - i_se) * r_ke + i_se * scale * r_ke


class SinglePathRuntime(nn.Module):
    """Total runtime R = fixed + Σ_i R^i (eq. 5.8), R^i from eq. 5.9–5.10 (and 6.5–6.8 with ``se_scale``).

    Forward takes, per searchable layer, the squared norms and thresholds of the three decisions
    (``norm_e3, t_e3``: use the layer at all; ``norm_e6, t_e6``: expansion 6 over 3; ``norm_k5, t_k5``:
    kernel 5×5 over 3×3; ``norm_se, t_se`` with SE), each a [L] tensor, and relaxes each indicator as
    :func:`indicator` does with ``mode``.
    """

    def __init__(
        self,
        table_ms: torch.Tensor,
        fixed_ms: float = 0.0,
        se_scale: torch.Tensor | None = None,
        mode: str = "ste",
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if table_ms.ndim != 2 or table_ms.shape[1] != 4:
            raise InputError(f"runtime table must be [layers, 4] (codes 0-3), got {tuple(table_ms.shape)}")
        self.register_buffer("table_ms", table_ms.detach().clone().double())
        self.register_buffer("se_scale", None if se_scale is None else se_scale.detach().clone().double())
        self.fixed_ms = float(fixed_ms)
        self.mode = mode
        self.temperature = temperature

    @classmethod
    def pixel1(cls, **kwargs: Any) -> SinglePathRuntime:
        """The published Pixel 1 table: blocks 1–20 searchable, the rest a fixed 19.5999 ms."""
        data = load_pixel1_table()
        rows = [[data[str(i)][str(c)] for c in range(4)] for i in range(1, 21)]
        return cls(torch.tensor(rows, dtype=torch.float64), fixed_ms=PIXEL1_FIXED_MS, **kwargs)

    def layer_runtimes(
        self, i_e3: torch.Tensor, i_e6: torch.Tensor, i_k5: torch.Tensor, i_se: torch.Tensor | None = None
    ) -> torch.Tensor:
        r = single_path_layer_runtime(self.table_ms, i_e3, i_e6, i_k5)
        if i_se is not None:
            if self.se_scale is None:
                raise InputError("SE decisions given but the runtime model has no se_scale table")
            r = single_path_se_runtime(r, self.se_scale, i_se, i_e6, i_k5)
        return r

    def forward(
        self,
        norm_e3: torch.Tensor,
        t_e3: torch.Tensor,
        norm_e6: torch.Tensor,
        t_e6: torch.Tensor,
        norm_k5: torch.Tensor,
        t_k5: torch.Tensor,
        norm_se: torch.Tensor | None = None,
        t_se: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ind = lambda x, t: indicator(x, t, self.mode, self.temperature)  # noqa: E731
        i_se = ind(norm_se, t_se) if norm_se is not None and t_se is not None else None
        r = self.layer_runtimes(ind(norm_e3, t_e3), ind(norm_e6, t_e6), ind(norm_k5, t_k5), i_se)
        return self.fixed_ms + r.sum()

    def runtime_of(
        self, choices: Sequence[tuple[int, int] | None], se: Sequence[bool] | None = None
    ) -> float:
        """Runtime (ms) of a discrete architecture: per layer (kernel, expansion) or None for a skip."""
        if len(choices) != self.table_ms.shape[0]:
            raise InputError(f"expected {self.table_ms.shape[0]} layer choices, got {len(choices)}")
        for c in choices:
            if c is not None and c not in SINGLE_PATH_CODES:
                raise InputError(f"layer choice {c} is not one of {sorted(SINGLE_PATH_CODES)} or None (skip)")
        t = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
        i_e3 = t([0.0 if c is None else 1.0 for c in choices])
        i_e6 = t([1.0 if c is not None and c[1] == 6 else 0.0 for c in choices])
        i_k5 = t([1.0 if c is not None and c[0] == 5 else 0.0 for c in choices])
        i_se = t([1.0 if s else 0.0 for s in se]) if se is not None else None
        return float(self.fixed_ms + self.layer_runtimes(i_e3, i_e6, i_k5, i_se).sum())


def load_pixel1_table() -> dict[str, dict[str, float]]:
    """The Single-Path NAS Pixel 1 runtime table shipped in ``hwnas/data`` (see its attribution file)."""
    path = Path(__file__).resolve().parent.parent / "data" / "single_path_pixel1_runtime.json"
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------------------------
# (c) effective-shape FLOPs and params (FBNetV2 / DMaskingNAS)
# --------------------------------------------------------------------------------------------------------


def effective_channels(weights: torch.Tensor, options: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Eq. 3.5: ``C̄_out = Σ_i g_i · C_i,out`` (e.g. 0.8·16 + 0.2·12 = 15.2)."""
    opts = torch.as_tensor(options, dtype=weights.dtype, device=weights.device)
    return (weights * opts).sum(-1)


def effective_spatial(weights: torch.Tensor, sizes: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Eq. 3.6 for a resolution search: ``h̄ = Σ_i g_i · h_i`` over the candidate sizes."""
    return effective_channels(weights, sizes)


def conv_cost(
    kernel: int,
    h_out: torch.Tensor | float,
    w_out: torch.Tensor | float,
    c_in: torch.Tensor | float,
    c_out: torch.Tensor | float,
    groups: torch.Tensor | float = 1,
    kind: str = "flops",
) -> torch.Tensor:
    """Eq. 3.10: ``k² · h̄_out · w̄_out · C̄_in · C̄_out / γ`` (FLOP) or ``k² · C̄_in · C̄_out / γ`` (param).

    (FLOP here counts multiply-accumulates per image, as the thesis' formula does: no batch, no factor 2.)
    """
    k2 = float(kernel) ** 2
    c = torch.as_tensor(c_in) * torch.as_tensor(c_out) / torch.as_tensor(groups)
    if kind == "flops":
        return k2 * torch.as_tensor(h_out) * torch.as_tensor(w_out) * c
    if kind == "params":
        return k2 * c
    raise ValueError(f"kind must be 'flops' or 'params', got {kind!r}")


@dataclass(frozen=True)
class EffConv:
    """One convolution in an effective-shape chain.

    ``out_channels``: an int (eq. 3.8: C̄_out = C_out), or a tuple of options searched with Gumbel
    weights (eq. 3.5). ``depthwise``: C̄_out = C̄_in (eq. 3.9) and γ = C̄_in.
    """

    kernel: int
    out_channels: int | tuple[int, ...] | None = None
    stride: int = 1
    groups: int = 1
    depthwise: bool = False


def effective_shape_cost(
    layers: Sequence[EffConv],
    weights: Sequence[torch.Tensor | None],
    in_channels: float,
    in_size: torch.Tensor | float,
    kind: str = "flops",
    batch: int = 1,
) -> tuple[torch.Tensor, list[torch.Tensor], tuple[Any, ...]]:
    """Propagate effective shapes through convolutions, summing eq. 3.10: ``cost_total = Σ_l cost^l``.

    ``weights[l]`` holds the Gumbel weights of layer l's channel options (None for a fixed layer);
    ``in_size`` is the (effective) input height = width, e.g. :func:`effective_spatial` of a resolution
    search. ``C̄_in^{l+1} = C̄_out^l``; spatial size divides by the stride. Returns (total, per-layer costs,
    final effective shape (n, C̄, h̄, w̄) as in eq. 3.7).
    """
    if len(weights) != len(layers):
        raise ValueError(f"{len(layers)} layers but {len(weights)} weight entries")
    c_in = torch.as_tensor(float(in_channels), dtype=torch.float64)
    size = torch.as_tensor(in_size, dtype=torch.float64) if not torch.is_tensor(in_size) else in_size
    per: list[torch.Tensor] = []
    for layer, w in zip(layers, weights, strict=True):
        size = size / layer.stride
        if layer.depthwise:
            c_out, groups = c_in, c_in  # eq. 3.9; γ = channels
        elif isinstance(layer.out_channels, tuple):
            if w is None:
                raise ValueError("a layer with channel options needs Gumbel weights")
            c_out, groups = effective_channels(w, layer.out_channels), layer.groups  # eq. 3.5
        else:
            if layer.out_channels is None:
                raise ValueError("a non-depthwise layer needs out_channels")
            c_out, groups = (
                torch.as_tensor(float(layer.out_channels), dtype=torch.float64),
                layer.groups,
            )  # eq. 3.8
        per.append(conv_cost(layer.kernel, size, size, c_in, c_out, groups, kind))
        c_in = c_out
    total = torch.stack(per).sum() if per else torch.zeros((), dtype=torch.float64)
    return total, per, (batch, c_in, size, size)


def effective_layer_cost(
    op: str,
    kind: str,
    *,
    c_in: torch.Tensor | float,
    c_out: torch.Tensor | float | None = None,
    h_in: torch.Tensor | float = 1.0,
    h_out: torch.Tensor | float | None = None,
    kernel: int = 1,
    groups: torch.Tensor | float = 1,
    bias: bool = False,
) -> torch.Tensor:
    """Cost of one layer on effective shapes, for every layer of a network (not only convolutions).

    ``kind="macs"`` is eq. 3.10 as printed (conv and linear multiply-accumulates). ``kind="flops"`` and
    ``kind="params"`` follow ``hwnas.graph.analytic``'s counting conventions (FLOPs = 2·MACs + one per
    output element of element-wise work, batch-norm 2; params include batch-norm's 2·C and biases), so
    that on a one-hot (derived) architecture the sum equals the analytic counter's total exactly.
    Per image (batch 1); ``c_*`` and ``h_*`` are effective (Gumbel-weighted) values, eq. 3.5-3.9.
    """
    if kind not in ("macs", "flops", "params"):
        raise ValueError(f"kind must be 'macs', 'flops' or 'params', got {kind!r}")
    c_in = torch.as_tensor(c_in, dtype=torch.float64)
    c_out = c_in if c_out is None else torch.as_tensor(c_out, dtype=torch.float64)
    h_in = torch.as_tensor(h_in, dtype=torch.float64)
    h_out = h_in if h_out is None else torch.as_tensor(h_out, dtype=torch.float64)
    zero = torch.zeros((), dtype=torch.float64)
    if op == "conv2d":
        if kind == "params":
            return conv_cost(kernel, 1.0, 1.0, c_in, c_out, groups, "params") + (c_out if bias else 0.0)
        macs = conv_cost(kernel, h_out, h_out, c_in, c_out, groups, "flops")
        if kind == "macs":
            return macs
        return 2.0 * macs + (c_out * h_out * h_out if bias else 0.0)
    if op == "linear":
        macs = c_in * c_out
        if kind == "macs":
            return macs
        if kind == "params":
            return macs + (c_out if bias else 0.0)
        return 2.0 * macs + (c_out if bias else 0.0)
    if kind == "macs":
        return zero
    if op == "batchnorm":
        return 2.0 * c_out if kind == "params" else 2.0 * c_out * h_out * h_out
    if kind == "params":
        return zero
    if op in ("relu", "relu6", "hardswish", "sigmoid", "add", "mul"):
        return c_out * h_out * h_out
    if op == "global_avgpool":
        return c_in * h_in * h_in
    if op in ("identity", "flatten", "dropout"):
        return zero
    raise ValueError(f"no effective-shape cost for op {op!r}")
