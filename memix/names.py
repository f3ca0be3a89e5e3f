"""Names shared by the params schema and the models, in a module that imports nothing, so that params are checked
without importing torch and the models need no pydantic."""

from __future__ import annotations

ARCHITECTURES: tuple[str, ...] = ("ststnet", "mmnet", "aman")
"""``model.name`` s of the comparison architectures (:mod:`memix.models.registry` builds them; every other name is a
timm ViT)."""

ATTENTION_METHODS: tuple[str, ...] = ("transmix", "memix")
"""Mixing methods that weight labels by a ViT's CLS attention over the flow patches: not defined for the
comparison architectures (none of them has it)."""

INPUT_SPACE_METHODS: tuple[str, ...] = ("none", "mixup", "cutmix", "remix", "balanced_mixup", "mixaugment")
"""Mixing methods that act on the input tensor alone: defined for every architecture."""
