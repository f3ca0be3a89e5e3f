"""Mixing methods behind one interface, looked up by name: ``get(name, num_classes, patch_size, ...)``.

The names are :data:`memix.config.MIXING_METHODS` (the fields of ``MixingParams``); method ``m`` lives in
``memix/mixing/<m>_mixer.py`` and is imported on first use, so a stage that trains one method imports (and
DVC hashes) that method's module only. Each method's settings are the fields of its section of
:class:`memix.config.MixingParams` and are validated by that section's model.
"""

from __future__ import annotations

import importlib
from typing import Any

from memix.mixing.base import Mixer

__all__ = ["MIXING_METHODS", "Mixer", "create", "get", "module_name"]


def __getattr__(name: str) -> Any:
    # MIXING_METHODS comes from memix.config (pydantic) on first use, so the trainer imports without pydantic
    if name == "MIXING_METHODS":
        from memix.config import MIXING_METHODS

        return MIXING_METHODS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def module_name(method: str) -> str:
    """The module that implements ``method``."""
    return f"memix.mixing.{method}_mixer"


def mixer_class(method: str) -> type[Mixer]:
    """The :class:`Mixer` subclass whose ``name`` is ``method``, from its own module."""
    try:
        module = importlib.import_module(module_name(method)) if method.isidentifier() else None
    except ModuleNotFoundError as err:
        if err.name != module_name(method):
            raise
        module = None
    if module is None:
        raise ValueError(f"unknown mixing method {method!r}; valid: {', '.join(_method_names())}")
    found = [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Mixer) and obj.name == method
    ]
    if len(found) != 1:
        raise RuntimeError(f"{module.__name__} must define exactly one Mixer with name {method!r}")
    return found[0]


def get(name: str, num_classes: int, patch_size: int = 16, label_smoothing: float = 0.0, **params: Any) -> Mixer:
    """Build the mixer ``name``; ``params`` are the fields of ``mixing.<name>`` (missing ones take defaults).

    ``patch_size`` must be the model's, since MEMix and TransMix work on its patch grid.
    """
    from pydantic import ValidationError

    from memix.config import MixingParams, error_lines

    cls = mixer_class(name)
    section = MixingParams.model_fields[name].annotation
    unknown = sorted(set(params) - set(section.model_fields))
    if unknown:
        valid = ", ".join(section.model_fields) or "(none)"
        raise ValueError(f"mixing.{name}: unknown param(s) {', '.join(unknown)}; valid: {valid}")
    try:
        settings = section(**params)
    except ValidationError as err:
        raise ValueError(f"mixing.{name}: invalid params: {'; '.join(error_lines(err))}") from None
    return cls(num_classes=num_classes, patch_size=patch_size, label_smoothing=label_smoothing, params=settings)


def create(name: str, num_classes: int, patch_size: int, label_smoothing: float, settings: Any) -> Mixer:
    """Build the mixer ``name`` from settings already validated (``params.mixing.<name>``, or any object with the
    section's fields as attributes): no pydantic needed, so a bare GPU machine can run the trainer."""
    return mixer_class(name)(
        num_classes=num_classes, patch_size=patch_size, label_smoothing=label_smoothing, params=settings
    )


def _method_names() -> list[str]:
    try:
        from memix.config import MIXING_METHODS
    except ImportError:  # pydantic absent: list the modules instead
        import pkgutil

        return sorted(m.name[: -len("_mixer")] for m in pkgutil.iter_modules(__path__) if m.name.endswith("_mixer"))
    return list(MIXING_METHODS)
