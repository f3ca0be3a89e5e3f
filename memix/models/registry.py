"""The comparison architectures by ``model.name``: what each needs, which mixing methods it takes, how to build it.

``model.name`` is a timm ViT name (the flow ViT, optionally MixMeFormer: :func:`memix.models.build`) or one of
:data:`ARCHITECTURES`, the networks of the published MER comparison, one module each in :mod:`memix.models.arch`.
Each is built from params alone, like timm's ``create_model``: ``model.options`` are passed to its constructor
(e.g. ``{conv_padding: 2}`` for STSTNet as its PyTorch release), the class count comes from the dataset. The
options each constructor takes are declared with their types, defaults and valid values in
:mod:`memix.config.model_options` (torch-free, so the params schema checks them when params load).

Mixing: the input-space methods (``none``, ``mixup``, ``cutmix``, ``remix``, ``balanced_mixup``, ``mixaugment``)
work for every architecture, ``manifold_mixup`` mixes the hidden tensor between the stages each module declares;
TransMix and MEMix weight the label by a ViT's CLS attention over the 14 x 14 flow patches, which none of these
networks has (HTNet's and CausalNet's attention runs inside facial-region blocks, over one token per block at their
releases' sizes, or over four region tokens: no class token, no attention over the flow's patches), so they are
refused with that reason rather than approximated (the paper's MEMix stays exact).
"""

from __future__ import annotations

import dataclasses
import inspect
from types import ModuleType
from typing import Any

from memix.models.arch import (  # imported, not looked up: the stages' code listings follow imports
    aman,
    causalnet,
    htnet,
    mmnet,
    ststnet,
)
from memix.names import ATTENTION_METHODS, INPUT_SPACE_METHODS


@dataclasses.dataclass(frozen=True)
class Architecture:
    """One comparison architecture: its module, class and what the pipeline must feed it."""

    name: str
    module: ModuleType  # in memix.models.arch: the class, INPUTS, YEAR, TYPE, PAPER, RELEASED, RECIPE, PUBLISHED
    cls: str
    missing_input: str | None = None  # why the pipeline cannot train it yet (None: it can)

    @property
    def inputs(self) -> str:
        """What it reads from the flow set (``flow``, or a view: ``faces``, ``regions``, ``sequence``;
        :data:`memix.io.views.INPUT_KINDS`)."""
        return str(self.module.INPUTS)

    @property
    def methods(self) -> tuple[str, ...]:
        """The mixing methods defined for it."""
        return (*INPUT_SPACE_METHODS, "manifold_mixup")


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in (
        Architecture("ststnet", ststnet, "STSTNet"),
        Architecture("mmnet", mmnet, "MMNet"),
        Architecture("htnet", htnet, "HTNet"),
        Architecture("causalnet", causalnet, "CausalNet"),
        Architecture(
            "aman", aman, "AMAN",
            missing_input="magnified frames (several magnification levels of each clip's frames, from the "
            "learning-based magnifier) passed through a FER+-trained ResNet-18 whose weights the release lists but "
            "does not hold (an untrained trunk's features would not be AMAN); no cached magnification stage exists",
        ),
    )
}


def is_architecture(name: str) -> bool:
    return name in ARCHITECTURES


def input_kind(name: str) -> str:
    """What ``model.name`` reads from the flow set: a view (``faces``, ``regions``, ``sequence``) for a network that
    says so, else ``flow`` (every ViT, MixMeFormer's face stream aside)."""
    return architecture(name).inputs if is_architecture(name) else "flow"


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise KeyError(f"model.name {name!r} is not a comparison architecture ({', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[name]


def mixing_problem(name: str, method: str) -> str | None:
    """Why ``method`` cannot train ``model.name`` ``name`` (None when it can, or when ``name`` is a ViT)."""
    if not is_architecture(name):
        return None
    arch = architecture(name)
    if method in arch.methods:
        return None
    if method in ATTENTION_METHODS:
        return (
            f"mixing.{method} weights labels by a ViT's CLS attention over the flow patches; model.name {name!r} "
            f"({arch.module.TYPE}) has none. Methods defined for it: {', '.join(arch.methods)}"
        )
    return f"mixing.{method} is not defined for model.name {name!r}"


def training_problem(name: str) -> str | None:
    """Why the pipeline cannot train ``model.name`` ``name`` yet (None when it can)."""
    if not is_architecture(name):
        return None
    missing = architecture(name).missing_input
    return None if missing is None else f"model.name {name!r} needs {missing}"


def constructor_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``model.options`` checked against the architecture's constructor (an unknown key is an error naming it).
    Params are checked fully when they load (:mod:`memix.config.model_options`); this guards a model spec made in
    code, and the GPU check, which runs without pydantic."""
    arch = architecture(name)
    cls = getattr(arch.module, arch.cls)
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("num_classes", "in_chans")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"model.options {unknown} are not options of {arch.cls} (it takes {', '.join(accepted)})")
    return dict(options)


REGION_INPUTS = ("regions", "sequence")
"""Views made of facial-region blocks (:mod:`memix.io.views`): images of four places of the face side by side."""


def augment_problem(name: str, flip: bool, rotate_deg: float, translate_frac: float) -> str | None:
    """Why ``train.augment`` cannot apply to ``model.name`` ``name`` (None when it can): flipping, turning or moving a
    region image moves its blocks across one another, which no face does (and neither release augments)."""
    if input_kind(name) not in REGION_INPUTS or not (flip or rotate_deg or translate_frac):
        return None
    return (f"model.name {name!r} reads {input_kind(name)} images: four facial-region blocks side by side, which a "
            "flip, rotation or shift would move across one another (its release does not augment); set "
            "train.augment: {flip: false, rotate_deg: 0.0, translate_frac: 0.0} (for an architecture run, in "
            "architectures.runs.<run>.train)")


def check_trainable(name: str, method: str) -> None:
    """Raise ValueError saying why ``method`` cannot train ``model.name`` ``name`` here (nothing when it can)."""
    problem = training_problem(name) or mixing_problem(name, method)
    if problem:
        raise ValueError(problem)
