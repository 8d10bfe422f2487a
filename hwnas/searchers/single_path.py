"""Single-Path NAS (Stamoulis thesis ch. 5) and Single-Path+ SE search (ch. 6) on the one-shot contract.

One **superkernel** per searchable MBConv block encodes every candidate op (eq. 5.1–5.4): the depthwise
5×5 kernel's inner 3×3 core is the 3×3 choice, the first half of the expansion-6 channels is expansion 3,
and a block that may be skipped drops its whole residual branch::

    w_k = w_3x3 + 1(‖w_5x5\\3x3‖² > t_k5) · w_5x5\\3x3                                   (5.2)
    w   = 1(‖w_k,3‖² > t_e3) · (w_k,3 + 1(‖w_k,6\\3‖² > t_e6) · w_k,6\\3)                    (5.3)

The SE superkernel (eq. 6.3) does the same over the squeeze convolution's output channels (ratios 0,
0.25, 0.5 of the expanded width). Runtime enters the loss as ``CE + λ · log R`` (eq. 5.7), R from the
device's table through eq. 5.8–5.10 / 6.5–6.8 (``single_path_table.py``; ``torch_costs.SinglePathRuntime``).

Implementation notes (each a choice the thesis leaves open, stated so it can be checked):

- ``‖w‖²`` is taken as the *mean* squared weight of the subset (‖w‖² / |w|): the same decision as
  ‖w‖² > |w| · t, with every layer's thresholds on one scale. Thresholds start at 0, so the search starts
  from the largest network (all k5e6, nothing skipped) and the runtime term prunes it.
- Indicator relaxations (§6.2), ``mode``: ``sigmoid`` (the thesis default: the step in the forward pass,
  the gradient of σ((x − t)/T) in the backward pass), ``ste`` (the step forward, identity gradient: the
  straight-through estimator), ``softmax`` (eq. 6.1: each decision is the softmax weight of "use the
  subset" over two logits, one fixed at 0, i.e. σ(τ); soft in the forward pass too, trained bilevel).
- The expansion and skip decisions mask the depthwise stage's *activations* (after its batch norm and
  ReLU6) and the residual branch's output rather than only the kernel, so that a dropped subset really
  contributes nothing (a batch-norm shift would otherwise leak through): with hard decisions the
  supernet computes exactly the derived network.
- Kernel-subset dropout (§5.3.3: the first six of eight epochs): during the first ``dropout_epochs`` each
  droppable subset (5×5 shell, e6 half, the whole block where it may be skipped, the SE paths) is dropped
  with probability ``subset_dropout`` per step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hwnas.cost_models.torch_costs import indicator
from hwnas.errors import InputError
from hwnas.searchers.oneshot import DerivedArchitecture, OneShotSearcher, Supernet
from hwnas.searchers.single_path_table import SEARCHABLE, SinglePathTable
from hwnas.spaces.mbv2 import MBConv, MBV2Space, make_divisible

MODES = ("sigmoid", "ste", "softmax")


def decide(x: torch.Tensor, t: torch.Tensor, mode: str, temperature: float) -> torch.Tensor:
    """One relaxed decision ``1(x > t)`` (``x`` a mean squared norm) or, in softmax mode, ``σ(t)``."""
    if mode == "sigmoid":
        return indicator(x, t, "ste", temperature)  # step forward, sigmoid gradient backward
    if mode == "ste":
        z = (x - t) / temperature
        return ((z > 0).to(z.dtype) - z).detach() + z
    if mode == "softmax":
        return torch.sigmoid(t)  # softmax over (off, on) logits (0, τ)
    raise InputError(f"indicator mode {mode!r} is not known", hint=f"one of {', '.join(MODES)}")


def _msq(w: torch.Tensor) -> torch.Tensor:
    return w.pow(2).mean()


class SuperMBConv(nn.Module):
    """A searchable MBConv block: 1×1 expand to ×6, superkernel depthwise 5×5, optional SE superkernel,
    1×1 project (+ residual). ``decisions(hard)`` gives d_k5, d_e6, d_e3 (1 where the block cannot be
    skipped) and d_se25, d_se50."""

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int,
        can_skip: bool,
        *,
        search_se: bool = False,
        mode: str = "sigmoid",
        temperature: float = 0.01,
        activation: type[nn.Module] = nn.ReLU6,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise InputError(f"indicator mode {mode!r} is not known", hint=f"one of {', '.join(MODES)}")
        self.cin, self.cout, self.stride, self.can_skip = cin, cout, stride, can_skip
        self.mid = cin * 6
        self.half = cin * 3
        self.mode, self.temperature, self.search_se = mode, float(temperature), search_se
        self.expand = nn.Sequential(
            nn.Conv2d(cin, self.mid, 1, bias=False), nn.BatchNorm2d(self.mid), activation()
        )
        self.dw = nn.Conv2d(self.mid, self.mid, 5, stride, 2, groups=self.mid, bias=False)
        self.dw_bn = nn.BatchNorm2d(self.mid)
        self.dw_act = activation()
        self.project = nn.Sequential(nn.Conv2d(self.mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        inner = torch.zeros(1, 1, 5, 5)
        inner[..., 1:4, 1:4] = 1.0
        self.register_buffer("inner", inner)
        self.residual = stride == 1 and cin == cout
        if can_skip and not self.residual:
            raise InputError(
                f"block {cin}->{cout} stride {stride} has no residual path and cannot be skipped"
            )
        # Thresholds start at 0 (every subset in use); softmax logits at 1 (σ = 0.73: in use, as well).
        start = 1.0 if mode == "softmax" else 0.0
        zero = lambda: nn.Parameter(torch.full((), start))  # noqa: E731
        self.t_k5, self.t_e6 = zero(), zero()
        self.t_e3 = zero() if can_skip else None
        if search_se:
            if self.mid % 8:
                raise InputError(f"SE search needs expanded channels divisible by 8, got {self.mid}")
            self.q_max = self.mid // 2
            self.q25 = self.mid // 4
            self.se_squeeze = nn.Conv2d(self.mid, self.q_max, 1)
            self.se_excite = nn.Conv2d(self.q_max, self.mid, 1)
            self.t_se25, self.t_se50 = zero(), zero()
        self.drop_p = 0.0  # kernel-subset dropout probability, set per epoch by the supernet

    def thresholds(self) -> list[nn.Parameter]:
        ts = [self.t_k5, self.t_e6] + ([self.t_e3] if self.t_e3 is not None else [])
        return ts + ([self.t_se25, self.t_se50] if self.search_se else [])

    def decisions(self, hard: bool = False) -> dict[str, torch.Tensor]:
        """The block's decisions from its current weights and thresholds (hard: 0/1 values)."""
        w = self.dw.weight
        d: dict[str, torch.Tensor] = {}
        d["k5"] = decide(_msq(w * (1 - self.inner)), self.t_k5, self.mode, self.temperature)
        wk = w * self.inner + d["k5"] * w * (1 - self.inner)
        d["e6"] = decide(_msq(wk[self.half :]), self.t_e6, self.mode, self.temperature)
        if self.t_e3 is not None:
            d["e3"] = decide(_msq(wk[: self.half]), self.t_e3, self.mode, self.temperature)
        else:
            d["e3"] = torch.ones((), dtype=w.dtype, device=w.device)
        if self.search_se:
            sq = self.se_squeeze.weight
            d["se25"] = decide(_msq(sq[: self.q25]), self.t_se25, self.mode, self.temperature)
            d["se50"] = decide(_msq(sq[self.q25 :]), self.t_se50, self.mode, self.temperature)
        if hard:
            d = {k: (v.detach() > 0.5).to(v.dtype) for k, v in d.items()}
        return d

    def squeeze_mask(self, d: dict[str, torch.Tensor]) -> torch.Tensor:
        """Which squeeze channels are in use. The squeeze width is se × the *used* expanded channels
        (mbv2.py), so with e3 the ratios 0.25/0.5 take the first m/8 and m/4 of the m = 6·cin
        channels, with e6 the first m/4 and m/2: nested groups G1 [0, m/8), G2 [m/8, m/4), G3 [m/4, m/2)."""
        m = self.mid
        dev, dt = self.dw.weight.device, self.dw.weight.dtype
        g1 = torch.ones(m // 8, device=dev, dtype=dt)
        g2 = torch.ones(m // 4 - m // 8, device=dev, dtype=dt) * (d["se50"] + d["e6"] - d["se50"] * d["e6"])
        g3 = torch.ones(self.q_max - m // 4, device=dev, dtype=dt) * (d["se50"] * d["e6"])
        return torch.cat([g1, g2, g3])

    def _dropped(self, d: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not (self.training and self.drop_p > 0):
            return d
        keep = lambda: (torch.rand((), device=self.dw.weight.device) >= self.drop_p).to(self.dw.weight.dtype)  # noqa: E731
        out = dict(d)
        for k in ("k5", "e6", "se25", "se50") + (("e3",) if self.t_e3 is not None else ()):
            if k in out:
                out[k] = out[k] * keep()
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self._dropped(self.decisions(hard=not self.training))
        w = self.dw.weight
        wk = w * self.inner + d["k5"] * w * (1 - self.inner)  # eq. 5.2
        h = self.expand(x)
        y = self.dw_act(self.dw_bn(nn.functional.conv2d(h, wk, None, self.stride, 2, 1, self.mid)))
        ones = torch.ones(self.half, dtype=y.dtype, device=y.device)
        y = y * torch.cat([ones, ones * d["e6"]]).view(1, -1, 1, 1)  # eq. 5.3, e6 half
        if self.search_se:  # eq. 6.3
            s = torch.relu(self.se_squeeze(nn.functional.adaptive_avg_pool2d(y, 1)))
            gate = torch.sigmoid(self.se_excite(s * self.squeeze_mask(d).view(1, -1, 1, 1)))
            y = y * (1 + d["se25"] * (gate - 1))
        z = self.project(y)
        if self.residual:
            return x + d["e3"] * z  # eq. 5.3, skip: the branch contributes nothing
        return z


class SinglePathSupernet(Supernet):
    """The MobileNetV2 backbone of ``space`` with SuperMBConv blocks 1–20, priced by ``table``."""

    cost_names = ("latency_ms",)

    def __init__(
        self,
        space: MBV2Space,
        table: SinglePathTable,
        *,
        mode: str = "sigmoid",
        temperature: float = 0.01,
        search_se: bool = False,
        subset_dropout: float = 0.1,
        dropout_epochs: int | None = None,
    ) -> None:
        super().__init__()
        if space.search_ends:
            raise InputError("single-path search keeps blocks 0 and 21 fixed", hint="use search_ends=False")
        if search_se and table.se_scale is None:
            raise InputError(
                f"--search-se needs SE scaling factors, and the {table.device or 'given'} table has none",
                hint="build the table with `hwnas single-path table --se`",
            )
        if search_se and tuple(space.se_ratios) != (0.0, 0.25, 0.5):
            space = MBV2Space(
                space.resolution,
                space.width,
                space.num_classes,
                space.seed,
                se_ratios=(0.0, 0.25, 0.5),
                activation=space.activation,
            )
        self.space, self.table = space, table
        self.mode, self.search_se = mode, search_se
        self.subset_dropout, self.dropout_epochs = float(subset_dropout), dropout_epochs
        act = nn.ReLU6 if space.activation == "relu6" else nn.ReLU
        stem_c = make_divisible(32 * space.width)
        head_c = make_divisible(1280 * max(1.0, space.width))
        self.stem = nn.Sequential(nn.Conv2d(3, stem_c, 3, 2, 1, bias=False), nn.BatchNorm2d(stem_c), act())
        b0, b21 = space.blocks[0], space.blocks[-1]
        self.first = MBConv(b0.in_channels, b0.out_channels, 3, 1, b0.stride, 0.0, act)
        self.blocks = nn.ModuleList(
            SuperMBConv(
                b.in_channels,
                b.out_channels,
                b.stride,
                b.can_skip,
                search_se=search_se,
                mode=mode,
                temperature=temperature,
                activation=act,
            )
            for b in (space.blocks[i] for i in SEARCHABLE)
        )
        self.last = MBConv(b21.in_channels, b21.out_channels, 3, 6, b21.stride, 0.0, act)
        self.head = nn.Sequential(
            nn.Conv2d(b21.out_channels, head_c, 1, bias=False), nn.BatchNorm2d(head_c), act()
        )
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(0.2), nn.Linear(head_c, space.num_classes)
        )
        self.runtime = table.runtime_model()

    def arch_parameters(self) -> list[nn.Parameter]:
        return [t for b in self.blocks for t in b.thresholds()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        for b in self.blocks:
            x = b(x)
        return self.classifier(self.head(self.last(x)))

    def _stacked(self, hard: bool) -> dict[str, torch.Tensor]:
        ds = [b.decisions(hard) for b in self.blocks]
        return {k: torch.stack([d[k] for d in ds]).double() for k in ds[0]}

    def cost(self) -> dict[str, torch.Tensor]:
        d = self._stacked(hard=not self.training)
        r = self.runtime.layer_runtimes(d["e3"], d["e6"], d["k5"], d.get("se25"))  # eq. 5.9-5.10 / 6.8
        return {"latency_ms": self.runtime.fixed_ms + r.sum()}  # eq. 5.8

    def tokens(self) -> list[str]:
        d = {k: v.tolist() for k, v in self._stacked(hard=True).items()}
        toks = []
        for j in range(len(self.blocks)):
            if d["e3"][j] < 0.5:
                toks.append("skip")
                continue
            se = ""
            if self.search_se and d["se25"][j] > 0.5:
                se = "se50" if d["se50"][j] > 0.5 else "se25"
            toks.append(f"k{5 if d['k5'][j] > 0.5 else 3}e{6 if d['e6'][j] > 0.5 else 3}{se}")
        return toks

    def derive(self) -> DerivedArchitecture:
        arch = self.space.encode(self.space.decode("-".join(self.tokens())))
        choices = self.space.decode(arch)
        return DerivedArchitecture(
            {"arch": arch},
            list(self.space.layers(arch).layers),
            {"latency_ms": self.table.predict(choices)},
            {"arch": arch},
        )

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        until = self.dropout_epochs if self.dropout_epochs is not None else int(round(0.75 * n_epochs))
        for b in self.blocks:
            b.drop_p = self.subset_dropout if epoch < until else 0.0

    def arch_state(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("k5", "e6", "e3", "se25", "se50"):
            ts = [getattr(b, f"t_{name}") for b in self.blocks if getattr(b, f"t_{name}", None) is not None]
            if ts:
                out[f"t_{name}"] = [round(float(t.detach()), 6) for t in ts]
        return out


@torch.no_grad()
def derived_module(net: SinglePathSupernet) -> nn.Module:
    """The derived network as a plain ``MBV2Space.build`` module carrying the supernet's weights (the
    used subsets of every superkernel), e.g. to fine-tune or export it. In eval mode it computes what the
    supernet computes with hard decisions."""
    arch = net.derive().config["arch"]
    child = net.space.build(arch)
    choices = net.space.decode(arch)
    child.stem.load_state_dict(net.stem.state_dict())
    child.blocks[0].load_state_dict(net.first.state_dict())
    child.blocks[-1].load_state_dict(net.last.state_dict())
    child.head.load_state_dict(net.head.state_dict())
    child.classifier.load_state_dict(net.classifier.state_dict())
    for j, sup in enumerate(net.blocks):
        ch = choices[j + 1]
        if ch.skip:
            continue
        seq = child.blocks[j + 1].conv
        mid = sup.cin * ch.expansion
        used = slice(0, mid)
        k = slice(1, 4) if ch.kernel == 3 else slice(0, 5)
        _copy_bn(seq[1], sup.expand[1], used)
        seq[0].weight.copy_(sup.expand[0].weight[used])
        seq[3].weight.copy_(sup.dw.weight[used, :, k, k])
        _copy_bn(seq[4], sup.dw_bn, used)
        i = 6
        if ch.se_ratio:
            se = seq[6]
            sq = se.fc1.out_channels
            se.fc1.weight.copy_(sup.se_squeeze.weight[:sq, :mid])
            se.fc1.bias.copy_(sup.se_squeeze.bias[:sq])
            se.fc2.weight.copy_(sup.se_excite.weight[:mid, :sq])
            se.fc2.bias.copy_(sup.se_excite.bias[:mid])
            i = 7
        seq[i].weight.copy_(sup.project[0].weight[:, used])
        _copy_bn(seq[i + 1], sup.project[1], slice(None))
    return child


def _copy_bn(dst: nn.BatchNorm2d, src: nn.BatchNorm2d, idx: slice) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[idx])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


def make_single_path_searcher(
    *,
    space: MBV2Space,
    table: SinglePathTable,
    lam: float = 0.2,
    penalty: Any = None,
    target_latency_ms: float | None = None,
    mode: str = "sigmoid",
    temperature: float = 0.01,
    search_se: bool = False,
    subset_dropout: float = 0.1,
    dropout_epochs: int | None = None,
    epochs: int = 8,
    lr: float = 0.05,
    arch_lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    **kwargs: Any,
) -> OneShotSearcher:
    """A Single-Path NAS search: ``CE + λ log R`` (or ``penalty``), a latency constraint logged per epoch.
    Softmax mode trains bilevel (eq. 6.1: alternate threshold-logit and weight steps)."""
    from hwnas.searchers.penalty import LogPenalty

    torch.manual_seed(seed)
    net = SinglePathSupernet(
        space,
        table,
        mode=mode,
        temperature=temperature,
        search_se=search_se,
        subset_dropout=subset_dropout,
        dropout_epochs=dropout_epochs,
    )
    cons = [f"latency_ms<={target_latency_ms}"] if target_latency_ms is not None else []
    s = OneShotSearcher(
        net,
        penalty if penalty is not None else LogPenalty(lam),
        constraints=cons,
        epochs=epochs,
        lr=lr,
        arch_lr=arch_lr,
        bilevel=mode == "softmax",
        seed=seed,
        device=device,
        name="single-path",
        **kwargs,
    )
    s.history.meta.update(
        {
            "mode": mode,
            "search_se": search_se,
            "table_device": table.device,
            "space": table.space or {"resolution": space.resolution, "width": space.width},
        }
    )
    return s
