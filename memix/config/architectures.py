"""Params of the architecture comparison (``reports/models_table.md``): which networks train, each with its
authors' recipe, and which run the others are paired against. Empty by default; ``params.models.yaml`` fills it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from memix.config.base import Section
from memix.config.training import MIXING_METHODS, ModelParams
from memix.names import ARCHITECTURES, ATTENTION_METHODS

RECIPE_KEYS = (
    "epochs", "batch_size", "optimizer", "lr", "schedule", "warmup_epochs", "weight_decay", "label_smoothing",
    "augment",
)
"""What a run's recipe may set in ``train`` (the rest, e.g. device and workers, is the machine's: top-level train)."""


class ArchRun(Section):
    """One trained row: a model (a comparison architecture or a ViT) and the recipe it trains with."""

    model: ModelParams = ModelParams()
    train: dict[str, Any] = Field(default_factory=dict, description=f"recipe: any of {', '.join(RECIPE_KEYS)}")
    methods: list[Literal[MIXING_METHODS]] = ["none"]  # type: ignore[valid-type]

    @field_validator("train")
    @classmethod
    def _recipe_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(RECIPE_KEYS))
        if unknown:
            raise ValueError(f"{unknown} are not recipe keys (valid: {', '.join(RECIPE_KEYS)})")
        return value

    @model_validator(mode="after")
    def _methods_defined(self) -> ArchRun:
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must be a non-empty list without repeats")
        if self.model.name in ARCHITECTURES:
            bad = [m for m in self.methods if m in ATTENTION_METHODS]
            if bad:
                raise ValueError(f"methods {bad} need a ViT's CLS attention over patches; {self.model.name} has none")
        return self


class RunMethod(Section):
    """One (run, method) of :class:`ArchitecturesParams`."""

    run: str
    method: Literal[MIXING_METHODS]  # type: ignore[valid-type]


class ArchitecturesParams(Section):
    """The comparison: ``runs`` by name (each a stage ``arch@<name>``), paired against ``reference``."""

    reference: RunMethod | None = None
    runs: dict[str, ArchRun] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reference_is_a_run(self) -> ArchitecturesParams:
        for name in self.runs:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"run name {name!r}: letters, digits, '-' and '_' only (it names a stage, a folder)")
        ref = self.reference
        if self.runs and ref is None:
            raise ValueError("reference must name the run and method the others are paired against")
        if ref is not None and (ref.run not in self.runs or ref.method not in self.runs[ref.run].methods):
            raise ValueError(f"reference {ref.run}/{ref.method} is not one of the runs' methods")
        return self

