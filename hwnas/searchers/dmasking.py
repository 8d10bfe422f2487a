"""The DMaskingNAS supernet of FBNetV2 (Wan thesis ch. 3): one network that searches channels, expansion
rates, block types and input resolution, with costs computed on effective shapes.

- **Channel masking** (eq. 3.1-3.3): every searched convolution is built with the largest channel count;
  its output is multiplied by ``M = Σ_i g_i · 1_i`` (``1_i``: ones in the first ``C_i`` entries), with
  Gumbel-softmax weights ``g`` (eq. 3.4). One convolution and one feature map per layer, whatever the
  number of options. The expansion rate is searched the same way (a mask on the expanded width).
- **Resolution subsampling** (fig. 3.2, 3.4): the input at the largest resolution is subsampled with
  nearest neighbours to each option, the body runs on the small map, and its output is placed back into a
  map of the largest size at the pixels it came from, zeros interspersed; the maps are summed with the
  resolution's Gumbel weights. Global pooling divides by the effective area ``Σ g_i · s_i²`` so a one-hot
  choice pools exactly like the derived network.
- **Effective shapes** (eq. 3.5-3.9): every channel count and spatial size is a :class:`Quantity`, an
  integer array over the decisions it depends on; its effective value is its mean under the Gumbel
  weights (``0.8·16 + 0.2·12 = 15.2``), its mask the weighted sum of prefix masks. Depthwise convolutions
  propagate the effective input channels (eq. 3.9). Costs per layer follow eq. 3.10 (FLOPs, params or
  MACs: ``torch_costs.effective_layer_cost``) and add up; block types are FBNet paths whose costs are
  weighted by the type's Gumbel weight.
- **Latency in place of FLOPs**: each layer's LayerSpec is enumerated over the joint grid of the decisions
  it depends on, priced once by a ``LayerCostPredictor`` (a device's cost table), and the expected latency
  is ``Σ_cells Π_d g_d · lat(cell)``, differentiable in every ``g``.

The effective shapes depend only on the weights, so :meth:`DMaskingSupernet.cost` walks the structure
once per step, while the tensor forward runs once per resolution option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.cost_models.torch_costs import effective_layer_cost, gumbel_softmax_weights
from hwnas.errors import InputError
from hwnas.graph.layer import LayerSpec, make_layer, same_conv
from hwnas.spaces.fbnetv2 import BLOCK_TYPES, SKIP, FBNetV2Arch, FBNetV2Space, conv_out

Weights = Mapping[str, torch.Tensor]


# --------------------------------------------------------------------------------------------------------
# effective quantities
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quantity:
    """An integer quantity (channels, height) as an array over the decisions ``axes`` it depends on."""

    axes: tuple[str, ...]
    values: np.ndarray

    @classmethod
    def fixed(cls, v: int) -> Quantity:
        return cls((), np.asarray(int(v)))

    @classmethod
    def choice(cls, axis: str, options: Sequence[int]) -> Quantity:
        return cls((axis,), np.asarray([int(o) for o in options]))

    def map(self, fn: Callable[[int], int]) -> Quantity:
        return Quantity(self.axes, np.vectorize(lambda v: int(fn(int(v))), otypes=[np.int64])(self.values))

    @staticmethod
    def combine(fn: Callable[..., int], *qs: Quantity) -> Quantity:
        """``fn`` of several quantities, on the union of their axes (outer product)."""
        axes: list[str] = []
        for q in qs:
            axes += [a for a in q.axes if a not in axes]
        arrays = [_expand(q, axes) for q in qs]
        vec = np.vectorize(lambda *vs: int(fn(*(int(v) for v in vs))), otypes=[np.int64])
        return Quantity(tuple(axes), vec(*np.broadcast_arrays(*arrays)))

    @property
    def max(self) -> int:
        return int(self.values.max())

    def weight(self, g: Weights) -> torch.Tensor:
        """Joint weight of each cell: the outer product of the axes' weights (1.0 for a fixed value)."""
        w = torch.ones((), dtype=torch.float64)
        for a in self.axes:
            w = w.unsqueeze(-1) * g[a].to(torch.float64)
        return w

    def mean(self, g: Weights) -> torch.Tensor:
        """Effective value (eq. 3.5/3.6): ``Σ_cells w · v``."""
        return (self.weight(g) * torch.as_tensor(self.values, dtype=torch.float64)).sum()

    def mask(self, g: Weights, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Eq. 3.3's ``M = Σ w · 1_v`` over ``width`` channels."""
        w = self.weight(g).reshape(-1).to(dtype)
        ones = torch.arange(width)[None, :] < torch.as_tensor(self.values.reshape(-1))[:, None]
        return (w[:, None] * ones.to(dtype)).sum(0)


def _expand(q: Quantity, axes: list[str]) -> np.ndarray:
    """``q.values`` with axes reordered/unsqueezed to broadcast over ``axes``."""
    v = q.values
    order = [q.axes.index(a) for a in axes if a in q.axes]
    v = np.transpose(v, order) if order else v
    shape = [v.shape[order.index(q.axes.index(a))] if a in q.axes else 1 for a in axes]
    return v.reshape(shape)


# --------------------------------------------------------------------------------------------------------
# supernet modules
# --------------------------------------------------------------------------------------------------------
_ACT = {"relu": nn.ReLU, "hardswish": nn.Hardswish}


class MaskedConvBNAct(nn.Module):
    """conv → BN → act at the largest width, then the channel mask (re-applied after BN, whose shift would
    otherwise revive masked channels).

    BN normalises with the batch's statistics in eval mode too (no running statistics): running means
    gathered under random Gumbel mixtures do not describe the derived network that eval mode runs."""

    def __init__(self, cin: int, cout: int, k: int, s: int, groups: int, act: str | None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, track_running_stats=False)
        self.act = _ACT[act]() if act else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        y = self.act(self.bn(self.conv(x)))
        return y if mask is None else y * mask.to(y.dtype)[None, :, None, None]


class SuperIR(nn.Module):
    """One inverted-residual path at the largest widths; ``mid_mask`` searches the expansion rate,
    ``out_mask`` the filters (eq. 3.3)."""

    def __init__(
        self, cin: int, mid: int, cout: int, k: int, s: int, act: str, expand: bool, res: bool
    ) -> None:
        super().__init__()
        self.pw = MaskedConvBNAct(cin, mid, 1, 1, 1, act) if expand else None
        self.dw = MaskedConvBNAct(mid, mid, k, s, mid, act)
        self.pwl = MaskedConvBNAct(mid, cout, 1, 1, 1, None)
        self.residual = res

    def forward(
        self, x: torch.Tensor, mid_mask: torch.Tensor | None, out_mask: torch.Tensor | None
    ) -> torch.Tensor:
        h = self.pw(x, mid_mask) if self.pw is not None else x
        y = self.pwl(self.dw(h, mid_mask), out_mask)
        return x + y if self.residual else y


@dataclass(frozen=True)
class _Unit:
    """One row-level step of the body: a fixed conv or a tbs block, with its effective quantities."""

    kind: str  # "conv" | "block"
    index: int  # module index
    cin: Quantity
    cout: Quantity
    mid: Quantity | None = None
    h_in: Quantity | None = None
    block: int = -1  # tbs block number
    types: tuple[str, ...] = ()
    kernel: int = 1
    stride: int = 1
    expand: bool = False
    residual: bool = False


class DMaskingSupernet(nn.Module):
    """The supergraph of an :class:`FBNetV2Space`. ``alphas`` (one logit vector per decision) are the
    architecture parameters; everything else is weights."""

    def __init__(self, space: FBNetV2Space, init_alpha: float = 0.0) -> None:
        super().__init__()
        self.space = space
        self.decisions: dict[str, tuple[Any, ...]] = {}
        if len(space.resolutions) > 1:
            self.decisions["res"] = tuple(space.resolutions)
        for i in space.filter_rows():
            self.decisions[f"f{i}"] = space.rows[i].filters
        for k, (i, j, _) in enumerate(space.blocks()):
            if len(space.block_choices(i, j)) > 1:
                self.decisions[f"t{k}"] = space.block_choices(i, j)
            if space.rows[i].searched_expansion:
                self.decisions[f"e{k}"] = space.rows[i].expansion
        self.alphas = nn.ParameterDict(
            {n: nn.Parameter(torch.full((len(o),), float(init_alpha))) for n, o in self.decisions.items()}
        )
        self.units: list[_Unit] = []
        self.body = nn.ModuleList()
        self._build()
        c_last = self.units[-1].cout
        fc_row = space.rows[-1]
        del fc_row
        self.fc = nn.Linear(c_last.max, space.num_classes)
        self._c_last = c_last

    # --- structure ------------------------------------------------------------------------------------
    def _quantity(self, row: int) -> Quantity:
        r = self.space.rows[row]
        return Quantity.choice(f"f{row}", r.filters) if r.searched_filters else Quantity.fixed(r.filters[0])

    def _build(self) -> None:
        sp = self.space
        c = Quantity.fixed(sp.in_channels)
        h = (
            Quantity.choice("res", sp.resolutions)
            if "res" in self.decisions
            else Quantity.fixed(sp.resolutions[0])
        )
        k_block = 0
        for i, r in enumerate(sp.rows):
            if r.block in ("conv3x3", "conv1x1"):
                k = 3 if r.block == "conv3x3" else 1
                cout = self._quantity(i)
                self.body.append(MaskedConvBNAct(c.max, cout.max, k, r.stride, 1, "relu"))
                self.units.append(
                    _Unit("conv", len(self.body) - 1, c, cout, h_in=h, kernel=k, stride=r.stride)
                )
                c, h = cout, h.map(lambda v, k=k, s=r.stride: conv_out(v, k, s))
            elif r.block == "tbs":
                cout = self._quantity(i)
                for j in range(r.repeats):
                    s = r.stride if j == 0 else 1
                    types = sp.block_choices(i, j)
                    if r.has_expand_conv:
                        e_opts = r.expansion
                        e_q = Quantity(
                            (f"e{k_block}",) if r.searched_expansion else (),
                            np.asarray(range(len(e_opts))) if r.searched_expansion else np.asarray(0),
                        )
                        mid = Quantity.combine(
                            lambda cv, ei, e_opts=e_opts: sp.mid_channels(cv, e_opts[ei]), c, e_q
                        )
                    else:
                        mid = c
                    paths = nn.ModuleDict()
                    kmax = 1
                    for b in types:
                        if b == SKIP:
                            continue
                        kern, act = BLOCK_TYPES[b]
                        kmax = max(kmax, kern)
                        paths[b] = SuperIR(c.max, mid.max, cout.max, kern, s, act, r.has_expand_conv, j > 0)
                    self.body.append(paths)
                    self.units.append(
                        _Unit(
                            "block",
                            len(self.body) - 1,
                            c,
                            cout,
                            mid,
                            h,
                            k_block,
                            types,
                            0,
                            s,
                            r.has_expand_conv,
                            j > 0,
                        )
                    )
                    c = cout
                    h = h.map(lambda v, s=s: conv_out(v, 3, s))  # same for k = 3 and 5 (padding k // 2)
                    k_block += 1
            elif r.block == "avgpool":
                self._h_last = h
            # fc: built after the loop
        if not hasattr(self, "_h_last"):
            raise InputError(f"space {sp.name}: needs an avgpool row before fc")

    # --- weights -----------------------------------------------------------------------------------------
    def sample_weights(self, tau: float, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Gumbel-softmax weights (eq. 3.4) of every decision at temperature ``tau``."""
        return {n: gumbel_softmax_weights(a, tau, generator) for n, a in self.alphas.items()}

    def argmax_weights(self) -> dict[str, torch.Tensor]:
        """One-hot weights at ``argmax α`` (the derived architecture)."""
        return {
            n: torch.nn.functional.one_hot(a.detach().argmax(), len(a)).to(a.dtype)
            for n, a in self.alphas.items()
        }

    def weights_of(self, arch: FBNetV2Arch) -> dict[str, torch.Tensor]:
        """One-hot weights selecting the point ``arch``."""
        self.space.validate(arch)
        choice: dict[str, Any] = {"res": arch.resolution}
        choice.update({f"f{i}": f for i, f in zip(self.space.filter_rows(), arch.filters, strict=True)})
        for k, (b, e) in enumerate(arch.blocks):
            choice[f"t{k}"] = b
            if f"e{k}" in self.decisions:
                opts = self.decisions[f"e{k}"]
                choice[f"e{k}"] = e if b != SKIP else opts[0]
        out = {}
        for n, opts in self.decisions.items():
            w = torch.zeros(len(opts), dtype=torch.float64)
            w[list(opts).index(choice[n])] = 1.0
            out[n] = w
        return out

    def derive(self, g: Weights | None = None) -> FBNetV2Arch:
        """``argmax_i g_i`` of every decision (of α when ``g`` is None) → the discrete architecture."""
        g = self.argmax_weights() if g is None else g
        pick = {n: self.decisions[n][int(torch.as_tensor(w).argmax())] for n, w in g.items()}
        sp = self.space
        blocks = []
        for k, (i, j, _) in enumerate(sp.blocks()):
            b = pick.get(f"t{k}", sp.block_choices(i, j)[0])
            e = float(pick.get(f"e{k}", sp.rows[i].expansion[0]))
            blocks.append((b, e if b != SKIP else 0.0))
        return FBNetV2Arch(
            int(pick.get("res", sp.resolutions[0])),
            tuple(int(pick.get(f"f{i}", sp.rows[i].filters[0])) for i in sp.filter_rows()),
            tuple(blocks),
        )

    def _w(self, g: Weights, name: str) -> torch.Tensor | None:
        return g.get(name)

    # --- forward -----------------------------------------------------------------------------------------
    def masks(self, g: Weights) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
        """Per unit (mid mask, out mask); None where the width is not searched."""
        out = []
        for u in self.units:
            om = u.cout.mask(g, u.cout.max) if u.cout.axes else None
            mm = u.mid.mask(g, u.mid.max) if u.mid is not None and u.mid.axes else None
            out.append((mm, om))
        return out

    def body_forward(self, x: torch.Tensor, g: Weights, masks: list[Any]) -> torch.Tensor:
        for u, (mm, om) in zip(self.units, masks, strict=True):
            mod = self.body[u.index]
            if u.kind == "conv":
                x = mod(x, om)
                continue
            wt = self._w(g, f"t{u.block}")
            y = None
            for ti, b in enumerate(u.types):
                w = wt[ti] if wt is not None else None
                if w is not None and not w.requires_grad and float(w) == 0.0:
                    continue  # a one-hot choice: the other paths contribute nothing
                out = x if b == SKIP else mod[b](x, mm, om)
                out = out if w is None else w.to(out.dtype) * out
                y = out if y is None else y + out
            x = y
        return x

    def forward(self, x: torch.Tensor, g: Weights) -> torch.Tensor:
        """Logits for ``x`` given at the largest resolution, under weights ``g`` (resolution subsampling)."""
        sp = self.space
        big = sp.max_resolution
        if x.shape[-1] != big or x.shape[-2] != big:
            raise InputError(f"supernet input must be {big}x{big}, got {tuple(x.shape[-2:])}")
        masks = self.masks(g)
        s_big = int(self._h_last.values.max())
        wr = g.get("res")
        acc: torch.Tensor | None = None
        area: torch.Tensor | float = 0.0
        for ri, r in enumerate(sp.resolutions):
            w = wr[ri] if wr is not None else None
            if w is not None and not w.requires_grad and float(w) == 0.0:
                continue
            idx = nearest_indices(r, big, x.device)
            y = self.body_forward(x[:, :, idx][:, :, :, idx], g, masks)
            s = y.shape[-1]
            placed = place_back(y, s_big)
            acc = placed * (w.to(y.dtype) if w is not None else 1.0) + (0.0 if acc is None else acc)
            area = area + (w.to(y.dtype) if w is not None else 1.0) * float(s * s)
        assert acc is not None
        pooled = acc.sum((2, 3)) / area
        return self.fc(pooled)

    # --- effective-shape cost ----------------------------------------------------------------------------
    def cost(self, g: Weights, kind: str = "flops") -> torch.Tensor:
        """Σ_l cost^l on effective shapes (eq. 3.5-3.10), per image; ``kind`` flops, params or macs."""
        return torch.stack([c for _, c in self.layer_costs(g, kind)]).sum()

    def layer_costs(self, g: Weights, kind: str = "flops") -> list[tuple[str, torch.Tensor]]:
        """(name, effective cost) of every layer, in order, block paths weighted by their type weight."""
        out: list[tuple[str, torch.Tensor]] = []
        ec = effective_layer_cost
        for u in self.units:
            assert u.h_in is not None
            cin, cout, h_in = u.cin.mean(g), u.cout.mean(g), u.h_in.mean(g)
            if u.kind == "conv":
                h_out = u.h_in.map(lambda v, u=u: conv_out(v, u.kernel, u.stride)).mean(g)
                p = f"body.{u.index}"
                out += [
                    (f"{p}.conv", ec("conv2d", kind, c_in=cin, c_out=cout, h_out=h_out, kernel=u.kernel)),
                    (f"{p}.bn", ec("batchnorm", kind, c_in=cout, h_in=h_out)),
                    (f"{p}.act", ec("relu", kind, c_in=cout, h_in=h_out)),
                ]
                continue
            assert u.mid is not None
            mid = u.mid.mean(g)
            h_out = u.h_in.map(lambda v, u=u: conv_out(v, 3, u.stride)).mean(g)
            wt = g.get(f"t{u.block}")
            for ti, b in enumerate(u.types):
                if b == SKIP:
                    continue
                kern, act = BLOCK_TYPES[b]
                w = wt[ti].to(torch.float64) if wt is not None else 1.0
                p = f"body.{u.index}.{b}"
                layers: list[tuple[str, torch.Tensor]] = []
                if u.expand:
                    layers += [
                        (f"{p}.pw.conv", ec("conv2d", kind, c_in=cin, c_out=mid, h_out=h_in, kernel=1)),
                        (f"{p}.pw.bn", ec("batchnorm", kind, c_in=mid, h_in=h_in)),
                        (f"{p}.pw.act", ec(act, kind, c_in=mid, h_in=h_in)),
                    ]
                # depthwise: C̄_out = C̄_in and γ = C̄_in (eq. 3.9)
                layers += [
                    (
                        f"{p}.dw.conv",
                        ec("conv2d", kind, c_in=mid, c_out=mid, h_out=h_out, kernel=kern, groups=mid),
                    ),
                    (f"{p}.dw.bn", ec("batchnorm", kind, c_in=mid, h_in=h_out)),
                    (f"{p}.dw.act", ec(act, kind, c_in=mid, h_in=h_out)),
                    (f"{p}.pwl.conv", ec("conv2d", kind, c_in=mid, c_out=cout, h_out=h_out, kernel=1)),
                    (f"{p}.pwl.bn", ec("batchnorm", kind, c_in=cout, h_in=h_out)),
                ]
                if u.residual:
                    layers.append((f"{p}.add", ec("add", kind, c_in=cout, h_in=h_out)))
                out += [(n, w * c) for n, c in layers]
        c_last, h_last = self._c_last.mean(g), self._h_last.mean(g)
        out.append(("pool", ec("global_avgpool", kind, c_in=c_last, h_in=h_last)))
        out.append(("fc", ec("linear", kind, c_in=c_last, c_out=float(self.space.num_classes), bias=True)))
        return out

    # --- latency through a cost table ---------------------------------------------------------------------
    def layer_sites(self) -> list[tuple[str | None, tuple[str, ...], np.ndarray]]:
        """Every layer as (type-decision cell or None, decision axes, object array of LayerSpecs over the
        axes' grid): what a cost table prices once to give the differentiable expected latency."""
        sites: list[tuple[str | None, tuple[str, ...], np.ndarray]] = []
        n = 1

        def grid(fn: Callable[..., LayerSpec], *qs: Quantity) -> tuple[tuple[str, ...], np.ndarray]:
            axes: list[str] = []
            for q in qs:
                axes += [a for a in q.axes if a not in axes]
            arrays = np.broadcast_arrays(*[_expand(q, axes) for q in qs])
            shape = arrays[0].shape
            specs = np.empty(shape, dtype=object)
            for idx in np.ndindex(shape):
                specs[idx] = fn(*(int(a[idx]) for a in arrays))
            return tuple(axes), specs

        def conv(cin: int, cout: int, h: int, k: int, s: int, groups: int) -> LayerSpec:
            return same_conv(n, cin, cout, h, k, s, groups)

        def same(op: str, c: int, h: int, **kw: Any) -> LayerSpec:
            return make_layer(op, (n, c, h, h), (n, c, h, h), **kw)

        def add(c: int, h: int) -> LayerSpec:
            return make_layer("add", (n, c, h, h), (n, c, h, h), extra_input_shapes=((n, c, h, h),))

        for u in self.units:
            assert u.h_in is not None
            h_out = u.h_in.map(lambda v, u=u: conv_out(v, u.kernel if u.kind == "conv" else 3, u.stride))
            if u.kind == "conv":
                k, s = u.kernel, u.stride
                sites.append(
                    (None, *grid(lambda ci, co, h, k=k, s=s: conv(ci, co, h, k, s, 1), u.cin, u.cout, u.h_in))
                )
                sites.append(
                    (None, *grid(lambda c, h: same("batchnorm", c, h, in_channels=c), u.cout, h_out))
                )
                sites.append((None, *grid(lambda c, h: same("relu", c, h), u.cout, h_out)))
                continue
            assert u.mid is not None
            for ti, b in enumerate(u.types):
                cell = f"t{u.block}:{ti}" if f"t{u.block}" in self.decisions else None
                if b == SKIP:  # the derived network keeps an identity layer (priced as the table says)
                    sites.append((cell, *grid(lambda c, h: same("identity", c, h), u.cin, u.h_in)))
                    continue
                kern, act = BLOCK_TYPES[b]
                s = u.stride
                if u.expand:
                    sites.append(
                        (cell, *grid(lambda ci, m, h: conv(ci, m, h, 1, 1, 1), u.cin, u.mid, u.h_in))
                    )
                    sites.append(
                        (cell, *grid(lambda m, h: same("batchnorm", m, h, in_channels=m), u.mid, u.h_in))
                    )
                    sites.append((cell, *grid(lambda m, h, a=act: same(a, m, h), u.mid, u.h_in)))
                sites.append((cell, *grid(lambda m, h, k=kern, s=s: conv(m, m, h, k, s, m), u.mid, u.h_in)))
                sites.append((cell, *grid(lambda m, h: same("batchnorm", m, h, in_channels=m), u.mid, h_out)))
                sites.append((cell, *grid(lambda m, h, a=act: same(a, m, h), u.mid, h_out)))
                sites.append((cell, *grid(lambda m, co, h: conv(m, co, h, 1, 1, 1), u.mid, u.cout, h_out)))
                sites.append(
                    (cell, *grid(lambda c, h: same("batchnorm", c, h, in_channels=c), u.cout, h_out))
                )
                if u.residual:
                    sites.append((cell, *grid(add, u.cout, h_out)))
        c_last, h_last = self._c_last, self._h_last

        def pool(c: int, h: int) -> LayerSpec:
            return make_layer("global_avgpool", (n, c, h, h), (n, c, 1, 1))

        def fc(c: int) -> LayerSpec:
            nc = self.space.num_classes
            return make_layer("linear", (n, c), (n, nc), in_channels=c, out_channels=nc, bias=True)

        def flatten(c: int) -> LayerSpec:
            return make_layer("flatten", (n, c, 1, 1), (n, c), attrs={"start_dim": 1})

        sites.append((None, *grid(pool, c_last, h_last)))
        sites.append((None, *grid(flatten, c_last)))
        sites.append((None, *grid(fc, c_last)))
        return sites


class TableCost(nn.Module):
    """Expected cost of a supernet under weights ``g`` from a per-layer cost predictor (latency from a
    device's cost table), through the differentiable view of the cost interface: the LayerSpecs of every
    layer over its decision grid are priced once by ``interface.candidate_cost_matrix`` ([sites, cells]),
    and each step ``torch_costs.expected_cost`` contracts them with the joint weights ``Π_d g_d`` of each
    cell (times the block type's weight for a layer inside a block path)."""

    def __init__(self, supernet: DMaskingSupernet, predictor: Any, name: str) -> None:
        super().__init__()
        from hwnas.cost_models.interface import candidate_cost_matrix

        self.name = name
        sites = supernet.layer_sites()
        candidates = [list(specs.reshape(-1)) for _, _, specs in sites]
        costs, mask = candidate_cost_matrix(predictor, name, candidates)
        if not bool(torch.isfinite(costs).all()):
            raise InputError(f"the cost predictor gave non-finite {name} for some of the supernet's layers")
        self.intercept, slopes = overhead_terms(predictor, candidates, costs.shape)
        costs = costs * slopes
        self.register_buffer("costs", costs)
        self.register_buffer("mask", mask)
        self.sites = [(cell, axes, specs.shape) for cell, axes, specs in sites]
        self.n_layer_specs = sum(len(c) for c in candidates)

    def weights(self, g: Weights) -> torch.Tensor:
        """[sites, cells] joint weight of every priced cell, zero-padded like the cost matrix."""
        rows = []
        width = self.costs.shape[1]
        for cell, axes, shape in self.sites:
            w = Quantity(axes, np.zeros(shape, dtype=np.int64)).weight(g).reshape(-1)
            if cell is not None:
                d, ti = cell.split(":")
                w = g[d][int(ti)].to(torch.float64) * w
            rows.append(torch.nn.functional.pad(w, (0, width - w.numel())))
        return torch.stack(rows)

    def forward(self, g: Weights) -> torch.Tensor:
        from hwnas.cost_models.torch_costs import expected_cost

        return self.intercept + expected_cost(self.weights(g), self.costs, self.mask)


def overhead_terms(predictor: Any, candidates: list[list[Any]], shape: Any) -> tuple[float, torch.Tensor]:
    """A layer cost table's fitted whole-model overhead (``a + b·Σ`` or ``a + Σ_k b_k·Σ_k`` per op kind) as
    (a, per-cell slope). It is linear in the layer costs, so folding it into the prices keeps the expected
    cost exact and makes a one-hot choice cost what the table predicts for the derived network."""
    table = getattr(predictor, "table", None)
    overhead = (getattr(table, "meta", None) or {}).get("overhead") if table is not None else None
    slopes = torch.ones(shape, dtype=torch.float64)
    if not overhead:
        return 0.0, slopes
    factor = float(getattr(predictor, "factor", 1.0))
    per_kind = overhead.get("slopes")
    if per_kind is None:
        return float(overhead.get("intercept", 0.0)) * factor, slopes * float(overhead.get("slope", 1.0))
    from hwnas.cost_models.data import layer_frame

    flat = [s for row in candidates for s in row]
    labels = [str(v) for v in layer_frame(flat)["op_code"].to_numpy()] if flat else []
    it = iter(labels)
    for i, row in enumerate(candidates):
        for k in range(len(row)):
            slopes[i, k] = float(per_kind.get(next(it), 1.0))
    return float(overhead.get("intercept", 0.0)) * factor, slopes


def nearest_indices(size: int, big: int, device: Any = None) -> torch.Tensor:
    """Rows (and columns) of a ``big`` map that nearest-neighbour subsampling to ``size`` reads."""
    return (torch.arange(size, device=device) * big) // size


def place_back(y: torch.Tensor, big: int) -> torch.Tensor:
    """Put a small map into a ``big`` map at the nearest-neighbour positions, zeros interspersed
    (fig. 3.4 C), so maps of every resolution sum with pixels aligned."""
    s = y.shape[-1]
    if s == big:
        return y
    idx = nearest_indices(s, big, y.device)
    out = y.new_zeros((*y.shape[:-2], big, big))
    out[..., idx[:, None], idx[None, :]] = y
    return out


@torch.no_grad()
def inherit_weights(net: DMaskingSupernet, arch: FBNetV2Arch) -> nn.Module:
    """The derived network of ``arch`` with the supernet's weights sliced in (the first channels of
    every masked convolution: exactly what the masks keep). Its output equals the supernet's under the
    one-hot weights of ``arch`` (tested); the thesis retrains the derived network instead (§3.3)."""
    sp = net.space
    derived = sp.build(arch)
    src_units = iter(net.units)
    blk = iter(arch.blocks)

    def copy_cbn(dst: nn.Module, src: MaskedConvBNAct) -> None:
        w = dst.conv.weight
        dst.conv.weight.copy_(src.conv.weight[: w.shape[0], : w.shape[1]])
        dst.bn.weight.copy_(src.bn.weight[: w.shape[0]])
        dst.bn.bias.copy_(src.bn.bias[: w.shape[0]])

    for i, r in enumerate(sp.rows):
        row = derived.rows[i]
        if r.block in ("conv3x3", "conv1x1"):
            copy_cbn(row, net.body[next(src_units).index])
        elif r.block == "tbs":
            for j in range(r.repeats):
                u = next(src_units)
                b, _ = next(blk)
                if b == SKIP:
                    continue
                src = net.body[u.index][b]
                dst = row[j]
                if src.pw is not None:
                    copy_cbn(dst.pw, src.pw)
                copy_cbn(dst.dw, src.dw)
                copy_cbn(dst.pwl, src.pwl)
        elif r.block == "fc":
            w = row.fc.weight
            row.fc.weight.copy_(net.fc.weight[:, : w.shape[1]])
            row.fc.bias.copy_(net.fc.bias)
    return derived
