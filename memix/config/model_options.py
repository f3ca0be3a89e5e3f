"""``model.name`` and ``model.options`` checked when params load, for the top-level model and every run.

Each comparison network's constructor options are declared here, one params section per network (types, defaults
and valid values, measured by building and training the net: ``tests/models/test_registry.py`` holds each to its
constructor and to what the network builds and trains at). They live here, not in ``memix/models/arch/``, so that
params are checked without importing torch (:mod:`memix.names`), and the networks without pydantic (the GPU
check's image has none). A ViT (``vit_flow_tiny`` or a timm ViT) takes no options: its settings are ``model``'s keys.
"""

from __future__ import annotations

import difflib
import functools
from typing import Annotated, Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from memix.config.base import Section
from memix.names import ARCHITECTURES

TINY_VIT = "vit_flow_tiny"
"""The CPU flow ViT, built from ``model``'s own keys (:mod:`memix.models.vit`)."""

VIT_KEYS = ("patch_size", "embed_dim", "depth", "num_heads", "drop_rate")
"""What sets a ViT up instead of options."""


class STSTNetOptions(Section):
    """:class:`memix.models.arch.ststnet.STSTNet`'s options."""

    conv_padding: int = Field(1, ge=0, description="1: the paper's 'same' convolution, 2: the authors' PyTorch release")
    filters: list[Annotated[int, Field(ge=1)]] = Field(
        [3, 5, 8], min_length=1, description="stream widths (the paper's 3, 5, 8)"
    )
    drop_rate: float = Field(0.5, ge=0, le=1, description="dropout after each stream's pool (0.5 in both releases)")
    img_size: int = Field(28, ge=1, validate_default=True, description="the side the network works at")

    @field_validator("img_size")
    @classmethod
    def _leaves_a_map(cls, value: int, info: ValidationInfo) -> int:
        """Measured: below 6 - 2 * conv_padding px the max pool leaves less than the 2 x 2 the average pool needs."""
        padding = info.data.get("conv_padding")
        if padding is not None and value + 2 * padding < 6:
            raise ValueError(f"STSTNet needs img_size at least 6 - 2 x conv_padding = {6 - 2 * padding} px "
                             f"(conv_padding {padding}): smaller leaves its average pool no 2 x 2 map")
        return value


class MMNetOptions(Section):
    """:class:`memix.models.arch.mmnet.MMNet`'s options."""

    img_size: int = Field(224, ge=16, multiple_of=16, description="the position-calibration grid is img_size / 16 "
                          "(the release's 224 gives its 14 x 14)")
    pos_depth: int = Field(2, ge=0, description="transformer blocks of the position-calibration branch (2 in "
                           "CASME2_5.py, 3 in CASME2_3.py)")
    pos_heads: int = Field(4, ge=1, description="attention heads: a divisor of the branch's width 512 (4)")
    pos_mlp_ratio: float = Field(4.0, ge=0, description="MLP width int(512 * ratio) (4 in CASME2_5.py, 2 in "
                                 "CASME2_3.py)")
    drop_path_rate: float = Field(0.0, ge=0, lt=1, description="stochastic depth of the branch's blocks")
    pos_antialias: bool = Field(False, strict=True, description="antialiased resize (the release's 2022 torchvision: "
                                "none)")

    @field_validator("pos_heads")
    @classmethod
    def _divides_the_width(cls, value: int) -> int:
        if 512 % value:
            raise ValueError("MMNet's pos_heads must divide the branch's width 512")
        return value


class AMANOptions(Section):
    """:class:`memix.models.arch.aman.AMAN`'s options."""

    img_size: int = Field(224, ge=32, description="the magnified frames' side (the trunk's stride is 16)")
    num_levels: int = Field(9, ge=1, description="magnification levels per frame (9 in the release)")
    train_trunk: bool = Field(False, strict=True, description="train the FER+ trunk too (the release keeps it frozen)")


class _HierarchyOptions(Section):
    """The hierarchical region transformer HTNet and CausalNet share (their releases' defaults: the GPU recipe)."""

    img_size: int = Field(28, ge=4, description="side the network works at (28 in both releases); the region view "
                          "is 28 px and is resized to it")
    patch_size: int = Field(7, ge=1, description="patch side; img_size / patch_size must split into "
                            "2^(num_hierarchies-1) blocks a side")
    dim: int = Field(256, ge=1, description="width of the first level (doubles per level; 256 in both releases)")
    heads: int = Field(3, ge=1, description="attention heads of the first level (doubles per level; 3)")
    num_hierarchies: int = Field(3, ge=1, description="levels of blocks (3)")
    mlp_mult: int = Field(4, ge=1, description="feed-forward width multiple (4)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout in attention and feed-forward (0)")

    @model_validator(mode="after")
    def _blocks_fit(self) -> _HierarchyOptions:
        fmap, blocks = divmod(self.img_size, self.patch_size)
        if blocks or fmap % 2 ** (self.num_hierarchies - 1):
            raise ValueError(f"img_size {self.img_size} / patch_size {self.patch_size} must be a whole multiple of "
                             f"2^(num_hierarchies - 1) = {2 ** (self.num_hierarchies - 1)}")
        if self.heads > self.dim:
            raise ValueError(f"heads {self.heads} leave no width per head at dim {self.dim} (dim // heads = 0)")
        if len(self.block_repeats) != self.num_hierarchies:  # type: ignore[attr-defined]
            raise ValueError(f"block_repeats needs one depth per level ({self.num_hierarchies})")
        return self


class HTNetOptions(_HierarchyOptions):
    """:class:`memix.models.arch.htnet.HTNet`'s options."""

    block_repeats: list[Annotated[int, Field(ge=1)]] = Field(
        [2, 2, 10], description="transformer layers per level, first level first ((2, 2, 10) in main_HTNet.py)"
    )


class CausalNetOptions(_HierarchyOptions):
    """:class:`memix.models.arch.causalnet.CausalNet`'s options."""

    block_repeats: list[Annotated[int, Field(ge=1)]] = Field(
        [3, 3, 9], description="transformer layers per level ((3, 3, 9) in main_train.py); the cross transformer "
        "takes the last level's depth, as the release's does"
    )
    gamma: float = Field(0.5, ge=0, description="distance penalty of the region attention (0.5 in main_train.py)")
    cross_heads: int = Field(8, ge=1, description="heads of the cross and causal attention (8): must divide dim")
    head_hidden: int = Field(2048, ge=1, description="hidden width of the two-layer classifier (2048)")

    @model_validator(mode="after")
    def _branches_end_at_one_cell(self) -> CausalNetOptions:
        """As the constructor: each branch must end at a 1 x 1 map, cut into 4 tokens the cross heads divide."""
        levels = self.num_hierarchies
        if self.img_size != self.patch_size * 2 ** (levels - 1):
            raise ValueError(f"CausalNet's img_size / patch_size must be 2^(num_hierarchies - 1) = {2 ** (levels - 1)}"
                             f" (its branches end at 1 x 1), got {self.img_size} / {self.patch_size}")
        width, rest = divmod(self.dim * 2 ** (levels - 1), 4)
        if rest or width % self.cross_heads:
            fused = self.dim * 2 ** (levels - 1) / 4
            raise ValueError(f"CausalNet's fused width dim x 2^(num_hierarchies - 1) / 4 = {fused:g} must be a whole "
                             f"multiple of cross_heads {self.cross_heads}")
        return self


OPTIONS: dict[str, type[Section]] = {"ststnet": STSTNetOptions, "mmnet": MMNetOptions, "aman": AMANOptions,
                                     "htnet": HTNetOptions, "causalnet": CausalNetOptions}
"""Each comparison architecture's options section, by ``model.name``."""


def check_name(name: str) -> None:
    """Raise ValueError naming the valid names if ``name`` is no model memix builds (a timm name needs timm)."""
    if name == TINY_VIT or name in ARCHITECTURES or _timm_names() is None or name in _timm_names():
        return
    close = difflib.get_close_matches(name, [TINY_VIT, *ARCHITECTURES, *(_timm_names() or ())], n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    raise ValueError(
        f"model.name {name!r} is not a model: {guess}valid names are {TINY_VIT} (the CPU flow ViT), "
        f"{', '.join(ARCHITECTURES)} (the comparison architectures) or a timm ViT such as vit_base_patch16_224"
    )


@functools.cache
def _timm_names() -> frozenset[str] | None:
    """Every timm model name (timm imports torch: only asked for a name that is neither built-in nor listed)."""
    try:
        import timm
    except ImportError:  # the build will say what is wrong
        return None
    return frozenset(timm.list_models())


def validate(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for ``model.name`` ``name``, unchanged; else a ValidationError with one error per option at its
    own key (an option the network does not take names the ones it does)."""
    section = OPTIONS.get(name)
    if section is None:
        why = (f"unknown option: model.name {name!r} is a ViT, which takes no options (its settings are "
               f"model.{', model.'.join(VIT_KEYS)}; options are for {', '.join(ARCHITECTURES)})")
        unknown = [_unknown(key, options[key], why) for key in options]
        if unknown:
            raise ValidationError.from_exception_data("options", unknown)
        return options
    try:
        section.model_validate(options)
    except ValidationError as err:
        valid = list(section.model_fields)
        errors = []
        for e in err.errors():
            if e["type"] == "extra_forbidden":
                key = str(e["loc"][0])
                close = difflib.get_close_matches(key, valid, n=1)
                guess = f"did you mean {close[0]}? " if close else ""
                errors.append(_unknown(key, e["input"], f"unknown option of {name} ({guess}valid options: "
                                                       f"{', '.join(valid)})"))
            else:
                errors.append(InitErrorDetails(type=PydanticCustomError("model_option", "{message}",
                                                                        {"message": e["msg"]}),
                                               loc=e["loc"], input=e["input"]))
        order = {key: i for i, key in enumerate(options)}  # as written in the params file
        errors.sort(key=lambda e: order.get(e["loc"][0] if e["loc"] else "", len(order)))
        raise ValidationError.from_exception_data("options", errors) from None
    return options


def _unknown(key: str, value: Any, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("model_option_unknown", "{message}", {"message": message}),
                            loc=(key,), input=value)
