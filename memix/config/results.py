"""Params of the results: which selection rules evaluation reports, the comparison table, the fitted model."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from memix.config.base import Section
from memix.config.training import MIXING_METHODS


# -------------------------------------------------------------------------------- eval / compare
class EvalParams(Section):
    """Which epoch-selection rules each method's evaluation reports (``oracle`` = test-set selection; ``release`` =
    the network's own release's selection, which for the mixing table's ViT is the oracle; every architecture run
    adds it), and the key-frame noise levels its last-epoch models are also scored at (train stage runs only)."""

    rules: list[Literal["last", "oracle", "release"]] = ["last", "oracle"]
    keyframe_noise: list[int] = Field(
        [], description="key-frame noise levels: each n > 0 also scores every LOSO unit's last-epoch model on its "
        "test clips with onset and apex each shifted by a seeded draw in [-n, n] frames (CausalNet's robustness "
        "question); empty = none. One keyframe_noise@<n> stage each (memix.preprocess.keyframe_noise)"
    )
    keyframe_noise_seed: int = Field(0, ge=0, description="seed of the key-frame shifts (with the level and clip id)")

    @field_validator("keyframe_noise", mode="before")
    @classmethod
    def _levels_a_list(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"must be a list, e.g. [{value}]: dvc.yaml's keyframe_noise stages loop over it")
        return value

    @field_validator("keyframe_noise")
    @classmethod
    def _levels_positive_unique(cls, value: list[int]) -> list[int]:
        bad = [n for n in value if n <= 0]
        if bad:
            raise ValueError(f"levels are shifts of at least one frame (> 0), got {bad}; the unshifted test set "
                             "(level 0) is always scored")
        if len(set(value)) != len(value):
            raise ValueError(f"levels must not repeat, got {value}")
        return value


class CompareParams(Section):
    """The comparison table: which methods and seeds, the baseline, and its paired bootstrap over subjects."""

    methods: list[Literal[MIXING_METHODS]] = list(MIXING_METHODS)  # type: ignore[valid-type]
    seeds: list[int] = [0, 1, 2]
    baseline: Literal[MIXING_METHODS] = "none"  # type: ignore[valid-type]
    bootstrap_resamples: int = Field(2000, ge=100, description="subject resamples of the paired bootstrap")
    bootstrap_seed: int = Field(0, ge=0, description="seed of the resamples (the same for every method)")

    @field_validator("methods", "seeds", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if isinstance(value, (str, int)):
            raise ValueError(
                f"must be a list, e.g. [{value}]: dvc.yaml's train and evaluate stages loop over it (with a single "
                "value DVC itself fails first, with \"'Value' object is not iterable\")"
            )
        return value

    @model_validator(mode="after")
    def _non_empty(self) -> CompareParams:
        if not self.methods or not self.seeds:
            raise ValueError("methods and seeds must not be empty")
        if len(set(self.methods)) != len(self.methods) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("methods and seeds must not repeat")
        if self.baseline not in self.methods:
            raise ValueError(
                f"compare.baseline {self.baseline!r} is not in compare.methods {self.methods}: the comparison needs "
                "its runs (add it to compare.methods or choose another baseline)"
            )
        return self


class FitParams(Section):
    """The model kept for prediction (stage ``fit``): trained on every subject with the train/model/mixing params."""

    methods: list[Literal[MIXING_METHODS]] = ["memix"]  # type: ignore[valid-type]
    seed: int = 0

    @model_validator(mode="after")
    def _unique(self) -> FitParams:
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must be a non-empty list without repeats")
        return self


# ------------------------------------------------------------------------------------------ transfer
TRANSFER_PROTOCOLS = ("holdout_database", "leave_one_dataset_out")


class TransferParams(Section):
    """Cross-dataset protocols over a composite's sources, beside its LOSO (``reports/transfer/<protocol>.md``).

    ``holdout_database`` (MEGC 2018 HDE): train on every clip of one source, test on every clip of another, for
    each ordered pair of sources. ``leave_one_dataset_out``: train on every source but one, test on it. One DVC
    stage per protocol and method (``transfer@<protocol>-<method>``), every seed of ``compare.seeds`` in it.
    """

    protocols: list[Literal[TRANSFER_PROTOCOLS]] = Field(  # type: ignore[valid-type]
        [], description="holdout_database | leave_one_dataset_out; empty = LOSO only"
    )
    methods: list[Literal[MIXING_METHODS]] = Field(  # type: ignore[valid-type]
        ["none"], description="mixing methods trained under each protocol"
    )

    @field_validator("protocols", "methods", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"must be a list, e.g. [{value}]: dvc.yaml's transfer stages loop over it")
        return value

    @model_validator(mode="after")
    def _unique(self) -> TransferParams:
        for key, values in (("protocols", self.protocols), ("methods", self.methods)):
            if len(set(values)) != len(values):
                raise ValueError(f"{key} must not repeat, got {values}")
        if not self.methods:
            raise ValueError("methods must not be empty (list the methods the protocols train)")
        return self
