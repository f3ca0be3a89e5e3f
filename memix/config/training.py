"""Params of training: the model, the optimisation and augmentation, and every mixing method (the one list of
method names, :data:`MIXING_METHODS`, is the fields of :class:`MixingParams`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from memix.config import model_options
from memix.config.base import Section
from memix.names import ARCHITECTURES

# ----------------------------------------------------------------------------------------- model

class ModelParams(Section):
    """The classifier: a timm ViT on flow, optionally with the MixMeFormer onset-face stream, or a comparison
    architecture with its constructor options. ``name``, ``face_stream`` and ``options`` are checked against each
    other here (:mod:`memix.config.model_options`), so a run's model is refused when params load, not when it trains.
    """

    name: str = "vit_flow_tiny"
    patch_size: int = Field(4, ge=1)
    embed_dim: int = Field(16, ge=8)
    depth: int = Field(2, ge=1)
    num_heads: int = Field(1, ge=1)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    pretrained: bool = False
    weights_path: str | None = None
    face_stream: bool = Field(False, description="MixMeFormer: add an onset-face ResNet-18 stream")
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="constructor options of a comparison architecture, as memix.config.model_options declares them "
        "(a ViT takes none)",
    )

    @field_validator("name")
    @classmethod
    def _a_model_memix_builds(cls, value: str) -> str:
        try:
            model_options.check_name(value)
        except ValueError as err:
            raise PydanticCustomError("model_name", "{message}", {"message": str(err)}) from None
        return value

    @field_validator("face_stream")
    @classmethod
    def _face_stream_is_a_vits(cls, value: bool, info: ValidationInfo) -> bool:
        name = info.data.get("name")
        if value and name in ARCHITECTURES:
            message = (
                f"MixMeFormer's onset-face stream goes with a ViT; model.name {name!r} has none (set it to false, or "
                "use a ViT such as vit_flow_tiny)"
            )
            raise PydanticCustomError("face_stream", "{message}", {"message": message})
        return value

    @field_validator("options")
    @classmethod
    def _options_of_the_named_model(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Each option as the named network declares it (:mod:`memix.config.model_options`): type and valid
        values, one error per option at its own key (``...model.options.img_size``)."""
        name = info.data.get("name")
        if name is None:  # the name is wrong: said already
            return value
        return model_options.validate(name, value)


# ------------------------------------------------------------------------------------------ train
class AugmentParams(Section):
    """Flow-aware geometric augmentation applied on the device before mixing."""

    flip: bool = True
    rotate_deg: float = Field(3.0, ge=0.0, le=45.0)
    translate_frac: float = Field(0.03, ge=0.0, le=0.5)


class TrainParams(Section):
    """LOSO training shared by every method."""

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=2)
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0.0)
    schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning rate per epoch: constant, or linear warm-up then cosine decay towards 0"
    )
    warmup_epochs: int = Field(0, ge=0, description="cosine: epochs whose rate rises linearly to train.lr")
    weight_decay: float = Field(0.05, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    eval_every: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(
        1, ge=0, description="torch CPU threads per training process (fixed, so results do not depend on workers)"
    )
    workers: int = Field(0, ge=0, description="CPU processes training fold groups at once; 0 = one per core")
    fold_batch: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="LOSO units (seed x fold) trained in one step; auto = what fits the device"
    )
    executor: Literal["local", "ray"] = Field(
        "local", description="local: this machine's CPU processes or every visible GPU; ray: Ray tasks (RAY_ADDRESS)"
    )
    ray_gpus: float = Field(0.0, ge=0.0, description="GPUs per Ray task (0 = CPU tasks)")
    compile: Literal[False, "default", "reduce-overhead"] = Field(
        False, description="torch.compile the grouped model; reduce-overhead captures CUDA graphs"
    )
    on_divergence: Literal["fail", "drop"] = Field(
        "fail", description="a NaN or infinite training loss: fail naming the fold, or drop that fold from the outputs"
    )
    augment: AugmentParams = AugmentParams()

    @model_validator(mode="after")
    def _warmup_inside_the_run(self) -> TrainParams:
        if self.warmup_epochs and self.schedule == "constant":
            raise ValueError("train.warmup_epochs needs train.schedule: cosine (a constant rate has no warm-up)")
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"train.warmup_epochs ({self.warmup_epochs}) must be below train.epochs ({self.epochs}): the cosine "
                "decay needs at least one epoch"
            )
        return self


# ----------------------------------------------------------------------------------------- mixing
class NoneMix(Section):
    pass


class MixupMix(Section):
    alpha: float = Field(1.0, gt=0.0)


class CutmixMix(Section):
    alpha: float = Field(1.0, gt=0.0)


class ManifoldMix(Section):
    alpha: float = Field(2.0, gt=0.0)
    blocks: list[int] = [0, 1, 2, 3, 4, 5, 6]


class TransmixMix(Section):
    alpha: float = Field(1.0, gt=0.0)
    mixup_prob: float = Field(0.0, ge=0.0, le=1.0, description="chance a batch uses mixup instead of a cutmix box")


class RemixMix(Section):
    alpha: float = Field(1.0, gt=0.0)
    kappa: float = Field(3.0, ge=1.0)
    tau: float = Field(0.5, ge=0.0, le=1.0)


class BalancedMix(Section):
    alpha: float = Field(0.2, gt=0.0)


class MixAugmentMix(Section):
    alpha: float = Field(1.0, gt=0.0)


class MEMixMix(Section):
    k_mode: Literal["beta", "fixed"] = "beta"
    alpha_k: float = Field(2.0, gt=0.0)
    k_offset: int = Field(14, ge=0)
    k: int = Field(40, ge=1, description="patches mixed when k_mode is fixed (clipped to the grid)")
    mix_alpha: float = Field(1.0, gt=0.0)
    pool: Literal["avg", "max"] = "avg"


class MixingParams(Section):
    """Per-method settings; each method's train stage depends on its own section only.

    The fields ARE the list of mixing methods (:data:`MIXING_METHODS`), in table order; each field's title is
    the method's display name. Method ``m``'s code is ``memix/mixing/<m>_mixer.py``.
    """

    none: NoneMix = Field(NoneMix(), title="No mixing")
    mixup: MixupMix = Field(MixupMix(), title="Mixup")
    cutmix: CutmixMix = Field(CutmixMix(), title="CutMix")
    manifold_mixup: ManifoldMix = Field(ManifoldMix(), title="Manifold Mixup")
    transmix: TransmixMix = Field(TransmixMix(), title="TransMix")
    remix: RemixMix = Field(RemixMix(), title="Remix")
    balanced_mixup: BalancedMix = Field(BalancedMix(), title="Balanced-MixUp")
    mixaugment: MixAugmentMix = Field(MixAugmentMix(), title="MixAugment")
    memix: MEMixMix = Field(MEMixMix(), title="MEMix")


MIXING_METHODS: tuple[str, ...] = tuple(MixingParams.model_fields)
"""Every mixing method's name, the one list the registry, the CLI, the stages and the table use."""


def method_title(method: str) -> str:
    """The display name of a mixing method (its ``MixingParams`` field title)."""
    return MixingParams.model_fields[method].title or method
