"""Names shared by the params schema and the models, in a module that imports nothing, so that params are checked
without importing torch and the models need no pydantic."""

from __future__ import annotations

ARCHITECTURES: tuple[str, ...] = ("ststnet", "mmnet", "aman", "htnet", "causalnet")
"""``model.name`` s of the comparison architectures (:mod:`memix.models.registry` builds them; every other name is a
timm ViT)."""

REGION_INPUTS: dict[str, str] = {"htnet": "regions", "causalnet": "sequence"}
"""The architectures that read facial-region images (:mod:`memix.io.views`), by the view they read: no
augmentation (it would move the blocks across one another), and CausalNet's needs the apex -> offset flow."""

ATTENTION_METHODS: tuple[str, ...] = ("transmix", "memix")
"""Mixing methods that weight labels by a ViT's CLS attention over the flow patches: not defined for the
comparison architectures (none of them has it)."""

INPUT_SPACE_METHODS: tuple[str, ...] = ("none", "mixup", "cutmix", "remix", "balanced_mixup", "mixaugment")
"""Mixing methods that act on the input tensor alone: defined for every architecture."""
