"""Mixing methods behind one interface, looked up by name: ``get(name, num_classes, patch_size, ...)``.

Modules are imported on first use, so ``import memix.mixing`` stays cheap. Each method's settings are the
fields of its section of :class:`memix.config.MixingParams` and are validated by that section's model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from memix.config import METHODS, MixingParams, error_lines

if TYPE_CHECKING:
    from memix.mixing.base import Mixer

_CLASSES = {
    "none": ("memix.mixing.none", "NoneMixer"),
    "mixup": ("memix.mixing.mixup", "MixupMixer"),
    "cutmix": ("memix.mixing.cutmix", "CutmixMixer"),
    "manifold_mixup": ("memix.mixing.manifold_mixup", "ManifoldMixupMixer"),
    "transmix": ("memix.mixing.transmix", "TransmixMixer"),
    "remix": ("memix.mixing.remix", "RemixMixer"),
    "balanced_mixup": ("memix.mixing.balanced_mixup", "BalancedMixupMixer"),
    "mixaugment": ("memix.mixing.mixaugment", "MixAugmentMixer"),
    "memix": ("memix.mixing.memix", "MEMixMixer"),
}
assert tuple(_CLASSES) == METHODS

__all__ = ["METHODS", "get"]


def get(name: str, num_classes: int, patch_size: int = 16, label_smoothing: float = 0.0, **params: Any) -> Mixer:
    """Build the mixer ``name``; ``params`` are the fields of ``mixing.<name>`` (missing ones take defaults).

    ``patch_size`` must be the model's, since MEMix and TransMix work on its patch grid.
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown mixing method {name!r}; valid: {', '.join(METHODS)}")
    section = MixingParams.model_fields[name].annotation
    unknown = sorted(set(params) - set(section.model_fields))
    if unknown:
        valid = ", ".join(section.model_fields) or "(none)"
        raise ValueError(f"mixing.{name}: unknown param(s) {', '.join(unknown)}; valid: {valid}")
    try:
        settings = section(**params)
    except ValidationError as err:
        raise ValueError(f"mixing.{name}: invalid params: {'; '.join(error_lines(err))}") from None
    module_name, class_name = _CLASSES[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(num_classes=num_classes, patch_size=patch_size, label_smoothing=label_smoothing, params=settings)
