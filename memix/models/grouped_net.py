"""G comparison-architecture models trained as one group: the fallback of fold batching for :mod:`memix.models.arch`.

:class:`memix.models.grouped.GroupedFlowModel` rewrites a timm ViT's forward as batched products over the units;
these networks (convolutions, batch norm, parallel streams) have no such rewrite, so here the group keeps every
unit's parameters and buffers stacked on a leading axis (one optimizer over the group, one checkpoint, the same
trainer) and the forward runs the network once per unit with that unit's slices (``torch.func.functional_call``)
on that unit's real rows only: batch norm sees exactly the rows it would see alone. It is one unit per forward
call, not one batched call per group: exact and simple, not faster than training folds one at a time.

Dropout inside the network draws from torch's global generator; each unit's forward runs under a forked generator
seeded from the unit's own dropout generator (one draw per pass, on the host), so a unit's result does not depend
on which units share its group or whether they sit the step out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call

from memix.mixing.base import ManifoldPlan
from memix.mixing.batched import GroupManifold
from memix.models.net_model import NetModel

SEED_HIGH = 2**62


class GroupedNetModel(nn.Module):
    """G :class:`NetModel` s with stacked parameters and buffers; ``forward`` maps (G, B, C, H, W) to (G, B, K)."""

    def __init__(self, models: Sequence[NetModel]) -> None:
        super().__init__()
        if not models:
            raise ValueError("a grouped model needs at least one model")
        first = models[0]
        shapes = [(k, tuple(v.shape)) for k, v in first.state_dict().items()]
        for m in models[1:]:
            if [(k, tuple(v.shape)) for k, v in m.state_dict().items()] != shapes:
                raise ValueError("the models of a group must share one architecture")
        self.size = len(models)
        self.name = first.name
        self.in_chans, self.img_size, self.patch_size = first.in_chans, first.img_size, first.patch_size
        self.grid, self.depth, self.num_classes = first.grid, first.depth, first.num_classes
        self.cls_attention: torch.Tensor | None = None
        self.dropout_generators: list[torch.Generator] | None = None
        self._template: list[NetModel] = [first]  # a plain list: its own tensors are neither trained nor saved
        self._param_names = [n for n, _ in first.named_parameters()]
        self._buffer_names = [n for n, _ in first.named_buffers()]
        self.weights = nn.ParameterDict({
            _key(n): nn.Parameter(torch.stack([dict(m.named_parameters())[n].detach() for m in models]))
            for n in self._param_names
        })
        for n in self._buffer_names:
            self.register_buffer("buf_" + _key(n), torch.stack([dict(m.named_buffers())[n].detach().clone()
                                                                 for m in models]))
        self._has_dropout = any(isinstance(m, nn.modules.dropout._DropoutNd) or type(m).__name__ == "DropPath"
                                for m in first.modules())

    def train(self, mode: bool = True) -> GroupedNetModel:
        super().train(mode)
        self._template[0].train(mode)
        return self

    def decay_flags(self) -> list[bool]:
        """Per parameter (in ``parameters()`` order): whether weight decay applies. A network whose release exempts
        some parameters says which by ``no_weight_decay()`` (timm's convention: names within the network)."""
        net = self._template[0].net
        exempt = {f"net.{n}" for n in net.no_weight_decay()} if hasattr(net, "no_weight_decay") else set()
        unknown = exempt - set(self._param_names)
        if unknown:
            raise ValueError(f"{self.name}.no_weight_decay() names no parameter: {sorted(unknown)}")
        return [n not in exempt for n in self._param_names]

    def _unit_tensors(self, g: int) -> dict[str, torch.Tensor]:
        tensors = {n: self.weights[_key(n)][g] for n in self._param_names}
        tensors.update({n: getattr(self, "buf_" + _key(n))[g] for n in self._buffer_names})
        return tensors

    def unit_state_dict(self, g: int) -> dict[str, torch.Tensor]:
        """Unit ``g``'s weights and buffers as a :class:`NetModel` state dict."""
        keys = self._template[0].state_dict().keys()
        tensors = self._unit_tensors(g)
        return {k: tensors[k].detach().clone() for k in keys}

    def draw_dropout(self, rows: Sequence[int], batch: int) -> dict[str, torch.Tensor] | None:
        """One seed per unit that takes this pass, from its own dropout generator (a unit with no rows draws
        nothing); None when the network has no dropout or is in eval mode."""
        if not self.training or not self._has_dropout:
            return None
        if self.dropout_generators is None or len(self.dropout_generators) != self.size:
            raise RuntimeError("dropout is on: set dropout_generators (one per unit) before training")
        seeds = [int(torch.randint(SEED_HIGH, (1,), generator=gen)) if n else 0
                 for gen, n in zip(self.dropout_generators, rows, strict=True)]
        return {"seeds": torch.tensor(seeds, dtype=torch.int64)}

    def forward(
        self,
        x: torch.Tensor,
        face: torch.Tensor | None = None,
        rows: Sequence[int] | None = None,
        manifold: GroupManifold | None = None,
        need_attention: bool = False,
        dropout: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Logits (G, B, K); rows past ``rows[g]`` (and units with none) are zeros."""
        G, B = x.shape[:2]
        if G != self.size:
            raise ValueError(f"grouped batch has {G} units, the model {self.size}")
        if need_attention:
            raise ValueError(f"{self.name} has no CLS attention over patches (TransMix and MEMix need a ViT)")
        rows = [B] * G if rows is None else list(rows)
        if dropout is None and self.training:
            dropout = self.draw_dropout(rows, B)
        seeds = None if dropout is None else dropout["seeds"].tolist()
        template = self._template[0]
        out = x.new_zeros((G, B, self.num_classes))
        for g, n in enumerate(rows):
            if n == 0:
                continue
            plan = _unit_manifold(manifold, g, n)
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [],
                                       enabled=seeds is not None):
                if seeds is not None:
                    torch.manual_seed(seeds[g])
                logits = functional_call(template, self._unit_tensors(g), (x[g, :n],), {"manifold": plan})
            out[g, :n] = logits.to(out.dtype)
        return out


def _unit_manifold(plan: GroupManifold | None, g: int, n: int) -> ManifoldPlan | None:
    if plan is None:
        return None
    block = int(plan.block[g])  # a host read (a GPU sync) per unit: these networks are not the captured path
    if block < 0:
        return None
    return ManifoldPlan(block=block, lam=plan.lam[g], perm=plan.perm[g, :n])


def _key(name: str) -> str:
    return name.replace(".", "__")
