"""G flow models trained as one: the fold-batched form of :class:`memix.models.flow_model.FlowModel`.

LOSO trains the same architecture on the same data once per test subject, and one fold's batch (34 clips in the
paper) leaves a GPU waiting on kernel launches and a CPU on per-op overhead. Here G models (one per fold, or per
(seed, fold) "unit") keep every weight stacked on a leading axis of size G and run one step together:

- timm stays the model definition: the G models are built by :func:`memix.models.build` (each with its own
  initialisation seed, pretrained weights and all) and their parameters are stacked. :func:`check_supported`
  lists the timm ViT features the grouped forward reproduces; anything else is refused with the reason.
- Linear layers become batched matrix products over (G, rows, in) x (G, in, out); layer norms normalise per token
  and apply each unit's affine; attention runs once over (G * B) sequences through the fused
  ``scaled_dot_product_attention``; the patch embedding is the convolution written as a product over patches.
- Inputs are (G, B, C, H, W): every unit gets the same number of rows B; a unit with fewer real rows pads with
  zeros, and nothing mixes rows of different samples (no batch norm in a ViT), so padding cannot leak. The
  MixMeFormer face stream (a ResNet with batch norm) runs per unit on that unit's real rows only.
- Each unit keeps its own randomness: manifold mixing takes a block, a weight and a permutation per unit, and
  dropout (``model.drop_rate``) draws from one generator per unit.

A unit's result is the same as its model trained alone, up to float rounding (tested to 1e-5 in fp32).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from timm.layers import LayerScale, Mlp
from timm.layers.attention import Attention
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn
from torch.func import functional_call

from memix.mixing.batched import GroupManifold, upload
from memix.models.flow_model import FlowModel


def check_supported(vit: VisionTransformer, where: str) -> None:
    """Refuse a timm ViT whose forward the grouped model would not reproduce exactly; say which part."""
    problems = []
    if getattr(vit, "global_pool", None) != "token" or vit.cls_token is None:
        problems.append("a class token read out by 'token' pooling")
    if getattr(vit, "reg_token", None) is not None:
        problems.append("no register tokens")
    for name in ("patch_drop", "fc_norm"):
        if not isinstance(getattr(vit, name), nn.Identity):
            problems.append(f"no {name}")
    if not isinstance(vit.patch_embed.norm, nn.Identity) or getattr(vit.patch_embed, "dynamic_img_pad", False):
        problems.append("a plain patch embedding")
    if not isinstance(vit.norm_pre, (nn.Identity, nn.LayerNorm)) or not isinstance(vit.norm, nn.LayerNorm):
        problems.append("LayerNorm norms")
    for i, blk in enumerate(vit.blocks):
        if type(blk) is not Block or not isinstance(blk.attn, Attention) or type(blk.mlp) is not Mlp:
            problems.append(f"block {i}: a plain timm Block with Attention and Mlp")
            continue
        attn, mlp = blk.attn, blk.mlp
        plain = [attn.q_norm, attn.k_norm, attn.norm, mlp.norm, blk.drop_path1, blk.drop_path2]
        if attn.gate is not None or not all(isinstance(m, nn.Identity) for m in plain):
            problems.append(f"block {i}: no q/k norm, gate, scale norm, mlp norm or drop path")
        if not all(isinstance(m, (nn.Identity, LayerScale)) for m in (blk.ls1, blk.ls2)):
            problems.append(f"block {i}: layer scale or none")
        if not isinstance(mlp.act, nn.GELU) or not isinstance(blk.norm1, nn.LayerNorm):
            problems.append(f"block {i}: GELU and LayerNorm")
        if any(d.p for d in (attn.attn_drop, attn.proj_drop, mlp.drop1, mlp.drop2)):
            problems.append(f"block {i}: no attention/projection/mlp dropout (model.drop_rate covers the rest)")
    if problems:
        raise ValueError(f"{where}: fold-batched training supports timm ViTs with {'; '.join(dict.fromkeys(problems))}")


class GroupedFlowModel(nn.Module):
    """G :class:`FlowModel` s with stacked weights; ``forward`` maps (G, B, C, H, W) to logits (G, B, K).

    After a forward with ``need_attention=True``, ``cls_attention`` is the detached (G, B, P*P) float32 CLS row
    of the last block, head-averaged, patch columns only (what TransMix and MEMix weight labels by).
    """

    def __init__(self, models: Sequence[FlowModel]) -> None:
        super().__init__()
        if not models:
            raise ValueError("a grouped model needs at least one model")
        first = models[0]
        for i, m in enumerate(models):
            check_supported(m.vit, f"model {i}")
            if m.state_dict().keys() != first.state_dict().keys() or any(
                a.shape != b.shape for a, b in zip(m.state_dict().values(), first.state_dict().values(), strict=True)
            ):
                raise ValueError("the models of a group must share one architecture")
        self.size = len(models)
        vit = first.vit
        self.in_chans, self.img_size, self.patch_size = first.in_chans, first.img_size, first.patch_size
        self.grid, self.depth, self.num_classes = first.grid, first.depth, first.num_classes
        self.num_heads = vit.blocks[0].attn.num_heads
        self.eps = vit.norm.eps
        self.no_embed_class = bool(getattr(vit, "no_embed_class", False))
        self.pre_norm = isinstance(vit.norm_pre, nn.LayerNorm)
        self.layer_scale = isinstance(vit.blocks[0].ls1, LayerScale)
        self.pos_drop_rate, self.head_drop_rate = float(vit.pos_drop.p), float(vit.head_drop.p)
        self.cls_attention: torch.Tensor | None = None
        self.dropout_generators: list[torch.Generator] | None = None
        self.weights = nn.ParameterDict({
            _key(name): nn.Parameter(torch.stack([dict(m.vit.named_parameters())[name].detach() for m in models]))
            for name, _ in vit.named_parameters()
        })
        # the face stream's module runs through functional_call with each unit's slice of the stacked tensors;
        # it is kept out of the module tree (a plain list) so its own tensors are neither trained nor saved
        self._face: list[nn.Module] = []
        if first.face is not None:
            template = first.face
            self._face.append(template)
            self._face_param_names = [n for n, _ in template.named_parameters()]
            self._face_buffer_names = [n for n, _ in template.named_buffers()]
            self.face_weights = nn.ParameterDict({
                _key(name): nn.Parameter(torch.stack([dict(m.face.named_parameters())[name].detach() for m in models]))
                for name in self._face_param_names
            })
            for name in self._face_buffer_names:
                stacked = torch.stack([dict(m.face.named_buffers())[name].detach().clone() for m in models])
                self.register_buffer("face_buf_" + _key(name), stacked)

    @property
    def face_template(self) -> nn.Module | None:
        return self._face[0] if self._face else None

    def train(self, mode: bool = True) -> GroupedFlowModel:
        super().train(mode)
        if self._face:
            self._face[0].train(mode)
        return self

    # --------------------------------------------------------------------------------------------- access
    def decay_flags(self) -> list[bool]:
        """Weight decay on every parameter (the released MEMix code's Adam has no exemptions)."""
        return [True for _ in self.parameters()]

    def w(self, name: str) -> torch.Tensor:
        return self.weights[_key(name)]

    def unit_state_dict(self, g: int) -> dict[str, torch.Tensor]:
        """Unit ``g``'s weights as a :class:`FlowModel` state dict (loads into ``models.build(...)``'s model)."""
        state = {f"vit.{_unkey(k)}": v.detach()[g].clone() for k, v in self.weights.items()}
        if self.face_template is not None:
            for name in self.face_template.state_dict():  # parameters and persistent buffers
                if name in self._face_param_names:
                    src = self.face_weights[_key(name)]
                else:
                    src = getattr(self, "face_buf_" + _key(name))
                state[f"face.{name}"] = src.detach()[g].clone()
        return state

    # -------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        x: torch.Tensor,
        face: torch.Tensor | None = None,
        rows: Sequence[int] | None = None,
        manifold: GroupManifold | None = None,
        need_attention: bool = False,
        dropout: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits (G, B, K). ``rows[g]`` is unit g's number of real rows (default all B): the face stream (batch
        norm) runs on them only and a unit with none draws no dropout mask. ``manifold`` mixes hidden tokens per
        unit (see :class:`GroupManifold`). ``dropout``: the masks :meth:`draw_dropout` drew for this pass (drawn
        here when not given)."""
        G, B = x.shape[:2]
        if G != self.size or tuple(x.shape[2:]) != (self.in_chans, self.img_size, self.img_size):
            raise ValueError(
                f"grouped flow batch has shape {tuple(x.shape)}, the model expects "
                f"({self.size}, B, {self.in_chans}, {self.img_size}, {self.img_size})"
            )
        rows = [B] * G if rows is None else list(rows)
        tokens = self._patch_embed(x)  # (G, B, P*P, D)
        if self.face_template is not None:
            if face is None:
                raise ValueError("model.face_stream is true (MixMeFormer) but no onset face batch was given")
            tokens = tokens + self._face_tokens(face, rows).to(tokens.dtype)
        masks = dropout if dropout is not None else {}
        h = self._pos_embed(tokens, rows, masks.get("pos"))
        if self.pre_norm:
            h = self._layer_norm(h, "norm_pre")
        self.cls_attention = None
        for i in range(self.depth):
            if manifold is not None:
                h = _mix_units(h, manifold, i, self.depth)
            h = self._block(h, i, need_attention and i == self.depth - 1)
        h = self._layer_norm(h, "norm")
        pooled = self._dropout(h[:, :, 0], self.head_drop_rate, rows, masks.get("head"))
        return _linear(pooled, self.w("head.weight"), self.w("head.bias"))

    def _patch_embed(self, x: torch.Tensor) -> torch.Tensor:
        G, B, C, H, W = x.shape
        p = self.patch_size
        patches = x.reshape(G, B, C, H // p, p, W // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        patches = patches.reshape(G, B * (H // p) * (W // p), C * p * p)
        weight = self.w("patch_embed.proj.weight").flatten(2)  # (G, D, C*p*p)
        out = _linear(patches, weight, self.w("patch_embed.proj.bias"))
        return out.reshape(G, B, (H // p) * (W // p), -1)

    def _face_tokens(self, face: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
        assert self.face_template is not None
        out = []
        for g in range(self.size):
            n = rows[g]
            state = {name: self.face_weights[_key(name)][g] for name in self._face_param_names}
            state.update({name: getattr(self, "face_buf_" + _key(name))[g] for name in self._face_buffer_names})
            real = functional_call(self.face_template, state, (face[g, :n],)) if n else None
            if n == face.shape[1]:
                out.append(real)
            else:  # padding rows get zero face tokens; they are never read
                dim = self.w("cls_token").shape[-1]
                pad = torch.zeros(face.shape[1] - n, self.grid * self.grid, dim, device=face.device, dtype=face.dtype)
                out.append(pad if real is None else torch.cat([real, pad.to(real.dtype)]))
        return torch.stack(out)

    def _pos_embed(self, tokens: torch.Tensor, rows: Sequence[int], mask: torch.Tensor | None) -> torch.Tensor:
        G, B = tokens.shape[:2]
        cls = self.w("cls_token").expand(G, B, -1, -1)  # (G, 1, 1, D) -> (G, B, 1, D)
        pos = self.w("pos_embed")  # (G, 1, N, D)
        if self.no_embed_class:
            h = torch.cat([cls, tokens + pos], dim=2)
        else:
            h = torch.cat([cls, tokens], dim=2) + pos
        return self._dropout(h, self.pos_drop_rate, rows, mask)

    def _layer_norm(self, h: torch.Tensor, name: str) -> torch.Tensor:
        out = F.layer_norm(h, h.shape[-1:], eps=self.eps)
        shape = (h.shape[0],) + (1,) * (h.ndim - 2) + (h.shape[-1],)
        return out * self.w(f"{name}.weight").view(shape) + self.w(f"{name}.bias").view(shape)

    def _block(self, h: torch.Tensor, i: int, need_attention: bool) -> torch.Tensor:
        G, B, N, D = h.shape
        pre = f"blocks.{i}."
        y = self._layer_norm(h, pre + "norm1")
        qkv = _linear(y.reshape(G, B * N, D), self.w(pre + "attn.qkv.weight"), self._maybe(pre + "attn.qkv.bias"))
        heads = self.num_heads
        qkv = qkv.reshape(G * B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if need_attention:
            self.cls_attention = _cls_row(q, k).reshape(G, B, N)[:, :, 1:]
        a = F.scaled_dot_product_attention(q, k, v)
        a = a.transpose(1, 2).reshape(G, B * N, D)
        a = _linear(a, self.w(pre + "attn.proj.weight"), self._maybe(pre + "attn.proj.bias")).reshape(G, B, N, D)
        h = h + self._scale(a, pre + "ls1")
        y = self._layer_norm(h, pre + "norm2").reshape(G, B * N, D)
        y = F.gelu(_linear(y, self.w(pre + "mlp.fc1.weight"), self._maybe(pre + "mlp.fc1.bias")))
        y = _linear(y, self.w(pre + "mlp.fc2.weight"), self._maybe(pre + "mlp.fc2.bias")).reshape(G, B, N, D)
        return h + self._scale(y, pre + "ls2")

    def _scale(self, y: torch.Tensor, name: str) -> torch.Tensor:
        if not self.layer_scale:
            return y
        return y * self.w(name + ".gamma").view(y.shape[0], 1, 1, -1)

    def _maybe(self, name: str) -> torch.Tensor | None:
        key = _key(name)
        return self.weights[key] if key in self.weights else None

    def draw_dropout(self, rows: Sequence[int], batch: int) -> dict[str, torch.Tensor] | None:
        """The keep masks of one training forward pass of ``batch`` rows, drawn ahead on the host (so the pass
        itself draws nothing): ``pos`` (G, B, N, D) and ``head`` (G, B, D) where that dropout is on."""
        if not self.training:
            return None
        dim = self.w("cls_token").shape[-1]
        tokens = self.grid * self.grid + 1
        masks = {}
        for name, rate, shape in (("pos", self.pos_drop_rate, (batch, tokens, dim)),
                                  ("head", self.head_drop_rate, (batch, dim))):
            if rate:
                masks[name] = self._draw_masks(torch.Size(shape), rate, rows, self.w("cls_token").device)
        return masks

    def _draw_masks(self, shape: torch.Size, rate: float, rows: Sequence[int], device: torch.device) -> torch.Tensor:
        """Each unit's keep mask from its own generator. A unit with no rows this step (it sits the step out)
        draws nothing: its stream then advances exactly as it would had the unit trained alone."""
        if self.dropout_generators is None or len(self.dropout_generators) != self.size:
            raise RuntimeError("dropout is on: set dropout_generators (one per unit) before training")
        draws = [
            torch.rand(shape, generator=gen, device=gen.device) if n else torch.zeros(shape, device=gen.device)
            for gen, n in zip(self.dropout_generators, rows, strict=True)
        ]
        return upload(torch.stack(draws), device) < 1.0 - rate  # one copy for the group

    def _dropout(self, h: torch.Tensor, rate: float, rows: Sequence[int], mask: torch.Tensor | None) -> torch.Tensor:
        """Dropout (timm's head and position dropout; ``model.drop_rate`` is the head's) with each unit's own
        generator, so the units' random streams stay apart; ``mask`` when drawn ahead (:meth:`draw_dropout`)."""
        if not self.training or rate == 0.0:
            return h
        if mask is None:
            mask = self._draw_masks(h.shape[1:], rate, rows, h.device)
        return h * mask.to(h.dtype) / (1.0 - rate)


def _key(name: str) -> str:
    return name.replace(".", "__")


def _unkey(key: str) -> str:
    return key.replace("__", ".")


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x (G, M, in) times each unit's weight (G, out, in)^T plus its bias (G, out): (G, M, out)."""
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _cls_row(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Head-averaged softmax attention of token 0 over every key, in float32 and detached: (G*B, N)."""
    with torch.no_grad(), torch.autocast(q.device.type, enabled=False):
        scale = q.shape[-1] ** -0.5
        scores = (q[:, :, :1].float() * scale) @ k.float().transpose(-2, -1)  # (G*B, H, 1, N)
        return scores.softmax(dim=-1).mean(dim=1)[:, 0]


def _mix_units(h: torch.Tensor, plan: GroupManifold, block: int, depth: int) -> torch.Tensor:
    """h' = lam*h + (1-lam)*h[perm] for the units that mix before ``block`` (a block past the last is the last)."""
    at = plan.block.clamp(max=depth - 1) == block
    at = at & (plan.block >= 0)
    lam = torch.where(at, plan.lam.to(h.dtype), torch.ones_like(plan.lam, dtype=h.dtype)).view(-1, 1, 1, 1)
    rows = torch.arange(h.shape[1], device=h.device).expand(h.shape[0], -1)
    perm = torch.where(at[:, None], plan.perm.to(h.device), rows)
    partner = torch.take_along_dim(h, perm[:, :, None, None], dim=1)
    return lam * h + (1 - lam) * partner
