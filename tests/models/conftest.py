"""Small model configs shared by the model tests (CPU-cheap: a few thousand parameters each)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from memix.config import ModelParams
from memix.models import FlowModel, build

TINY = ModelParams(name="vit_flow_tiny", patch_size=4, embed_dim=32, depth=3, num_heads=4)


@dataclass
class Plan:
    """A manifold-mixup plan as the mixing helper hands it over."""

    block: int
    lam: float | torch.Tensor
    perm: torch.Tensor


def _make_tiny(seed: int = 0, **overrides) -> FlowModel:
    torch.manual_seed(seed)
    return build(TINY.model_copy(update=overrides), in_chans=3, num_classes=5, img_size=32)


@pytest.fixture
def make_tiny():
    """Build a fresh tiny model (train mode) from a seed and ModelParams overrides."""
    return _make_tiny


@pytest.fixture
def tiny_model() -> FlowModel:
    return _make_tiny().eval()


@pytest.fixture
def plan_type() -> type:
    return Plan


@pytest.fixture
def capture_blocks():
    """A function: (model, x, **forward kwargs) -> (logits, [input of each block])."""
    return block_inputs


@pytest.fixture
def flow_batch() -> torch.Tensor:
    return torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def block_inputs(model: FlowModel, x: torch.Tensor, **kwargs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Logits and the input of every block of ``model`` for one forward."""
    seen: list[torch.Tensor] = []
    handles = [
        blk.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().clone()))
        for blk in model.vit.blocks
    ]
    try:
        logits = model(x, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return logits, seen
