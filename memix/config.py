"""Typed parameters: the single schema behind ``params.yaml``.

Every stage reads its section through :func:`load_params`, so an unknown key, a value of the wrong
type or one out of range fails before any work starts, with an error naming the key and the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from memix.io import paths


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --------------------------------------------------------------------------------------- dataset
class ClipPatch(_Section):
    """One coding-sheet correction, keyed by (Subject, Filename) as the sheet spells them, never by row."""

    subject: str | int
    filename: str
    field: Literal["onset", "apex", "offset", "emotion", "action_units"]
    value: int | str


class DatasetParams(_Section):
    """Which dataset the pipeline ingests and how its coding sheet is read."""

    name: Literal["casme2", "samm"] = "casme2"
    root: str = "data/raw/synthetic"
    sheet: str | None = Field(None, description="coding sheet path relative to root; null = the one .xlsx in root")
    classes: Literal["5class", "3class"] = "5class"
    on_bad_apex: Literal["patch", "drop"] = "patch"
    patches: list[ClipPatch] = Field([], description="sheet corrections applied before validation, each reported")


# ----------------------------------------------------------------------------------------- synth
class SynthParams(_Section):
    """The generated CASME II-shaped dataset (see memix.synth)."""

    seed: int = 0
    subjects: int = Field(12, ge=2, le=99)
    clips: int = Field(144, ge=5)
    frame_size: int = Field(256, ge=128, le=1024)
    face_size: int = Field(150, ge=64, le=900)
    first_frame_min: int = Field(1, ge=1)
    first_frame_max: int = Field(3000, ge=1)
    frames_min: int = Field(10, ge=5)
    frames_max: int = Field(30, ge=5)
    apex_px_min: float = Field(1.5, ge=0.0)
    apex_px_max: float = Field(3.5, ge=0.0)
    subject_intensity_sd: float = Field(0.25, ge=0.0, le=1.0)
    au_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="chance an optional AU of a class is left out")
    distractor_au_rate: float = Field(0.1, ge=0.0, le=1.0, description="chance of one extra AU from another class")
    unilateral_rate: float = Field(0.15, ge=0.0, le=1.0, description="chance a clip's lateral AUs are one-sided (L/R)")
    head_drift_px: float = Field(0.1, ge=0.0)
    head_rotation_deg: float = Field(0.05, ge=0.0)
    blink_rate: float = Field(0.1, ge=0.0, le=1.0)
    flicker: float = Field(0.01, ge=0.0, le=0.5)
    noise_sd: float = Field(1.0, ge=0.0)
    jpeg_quality: int = Field(90, ge=10, le=100)

    @model_validator(mode="after")
    def _ranges(self) -> SynthParams:
        if self.frames_min > self.frames_max:
            raise ValueError("frames_min must be <= frames_max")
        if self.apex_px_min > self.apex_px_max:
            raise ValueError("apex_px_min must be <= apex_px_max")
        if self.first_frame_min > self.first_frame_max:
            raise ValueError("first_frame_min must be <= first_frame_max")
        if self.face_size >= self.frame_size:
            raise ValueError("face_size must be smaller than frame_size")
        return self


# ----------------------------------------------------------------------------------------- faces
class FacesParams(_Section):
    """Face model source, detection and similarity alignment of onset (and apex) frames."""

    model: str = str(paths.FACE_MODEL)
    model_source: str | None = Field(None, description="a local face_landmarker.task to try first")
    size: int = Field(128, ge=16, le=1024)
    margin: float = Field(0.25, ge=0.0, le=1.0)
    min_detection_confidence: float = Field(0.3, gt=0.0, le=1.0)
    on_missing: Literal["error", "skip"] = "error"
    all_frames: bool = False
    shard_mb: float = Field(64.0, gt=0.0)


# ------------------------------------------------------------------------------------------ flow
class TVL1Params(_Section):
    """cv2.optflow.DualTVL1OpticalFlow parameters; defaults are OpenCV's."""

    tau: float = Field(0.25, gt=0.0)
    lambda_: float = Field(0.15, gt=0.0, alias="lambda")
    theta: float = Field(0.3, gt=0.0)
    nscales: int = Field(5, ge=1)
    warps: int = Field(5, ge=1)
    epsilon: float = Field(0.01, gt=0.0)
    inner_iterations: int = Field(30, ge=1)
    outer_iterations: int = Field(10, ge=1)
    scale_step: float = Field(0.8, gt=0.0, lt=1.0)
    gamma: float = Field(0.0, ge=0.0)
    median_filtering: int = Field(5, ge=1)
    use_initial_flow: bool = False

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class FarnebackParams(_Section):
    """cv2.calcOpticalFlowFarneback; defaults are the released MEMix code's settings."""

    pyr_scale: float = Field(0.5, gt=0.0, lt=1.0)
    levels: int = Field(3, ge=1)
    winsize: int = Field(15, ge=3)
    iterations: int = Field(3, ge=1)
    poly_n: int = Field(5, ge=3)
    poly_sigma: float = Field(1.2, gt=0.0)
    flags: int = Field(0, ge=0)


class DISParams(_Section):
    """cv2.DISOpticalFlow preset."""

    preset: Literal["ultrafast", "fast", "medium"] = "medium"


class FlowParams(_Section):
    """Onset -> apex optical flow, its channels and output size."""

    method: Literal["tvl1", "farneback", "dis"] = "tvl1"
    size: int = Field(32, ge=8, le=1024)
    channels: list[Literal["u", "v", "strain"]] = ["u", "v", "strain"]
    workers: int = Field(0, ge=0, description="process pool size; 0 = CPU count")
    shard_mb: float = Field(64.0, gt=0.0)
    montage_per_class: int = Field(3, ge=1)
    tvl1: TVL1Params = TVL1Params()
    farneback: FarnebackParams = FarnebackParams()
    dis: DISParams = DISParams()

    @model_validator(mode="after")
    def _channels(self) -> FlowParams:
        if len(set(self.channels)) != len(self.channels) or self.channels[:2] != ["u", "v"]:
            raise ValueError("channels must start with u, v and may add strain, without repeats")
        return self


# ----------------------------------------------------------------------------------------- model
class ModelParams(_Section):
    """The classifier: a timm ViT on flow, optionally with the MixMeFormer onset-face stream."""

    name: str = "vit_flow_tiny"
    patch_size: int = Field(8, ge=1)
    embed_dim: int = Field(32, ge=8)
    depth: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    pretrained: bool = False
    weights_path: str | None = None
    face_stream: bool = Field(False, description="MixMeFormer: add an onset-face ResNet-18 stream")


# ------------------------------------------------------------------------------------------ train
class AugmentParams(_Section):
    """Flow-aware geometric augmentation applied on the device before mixing."""

    flip: bool = True
    rotate_deg: float = Field(3.0, ge=0.0, le=45.0)
    translate_frac: float = Field(0.03, ge=0.0, le=0.5)


class TrainParams(_Section):
    """LOSO training shared by every method."""

    epochs: int = Field(24, ge=1)
    batch_size: int = Field(32, ge=2)
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0.0)
    weight_decay: float = Field(0.05, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    eval_every: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(
        1, ge=0, description="torch CPU threads per fold (fixed, so results do not depend on workers); 0 = default"
    )
    workers: int = Field(0, ge=0, description="folds trained at once in CPU processes; 0 = one per core")
    augment: AugmentParams = AugmentParams()


# ----------------------------------------------------------------------------------------- mixing
class NoneMix(_Section):
    pass


class MixupMix(_Section):
    alpha: float = Field(1.0, gt=0.0)


class CutmixMix(_Section):
    alpha: float = Field(1.0, gt=0.0)


class ManifoldMix(_Section):
    alpha: float = Field(2.0, gt=0.0)
    blocks: list[int] = [0, 1, 2, 3, 4, 5, 6]


class TransmixMix(_Section):
    alpha: float = Field(1.0, gt=0.0)
    mixup_prob: float = Field(0.0, ge=0.0, le=1.0, description="chance a batch uses mixup instead of a cutmix box")


class RemixMix(_Section):
    alpha: float = Field(1.0, gt=0.0)
    kappa: float = Field(3.0, ge=1.0)
    tau: float = Field(0.5, ge=0.0, le=1.0)


class BalancedMix(_Section):
    alpha: float = Field(0.2, gt=0.0)


class MixAugmentMix(_Section):
    alpha: float = Field(1.0, gt=0.0)


class MEMixMix(_Section):
    k_mode: Literal["beta", "fixed"] = "beta"
    alpha_k: float = Field(2.0, gt=0.0)
    k_offset: int = Field(1, ge=0)
    k: int = Field(4, ge=1, description="patches mixed when k_mode is fixed (clipped to the grid)")
    mix_alpha: float = Field(1.0, gt=0.0)
    pool: Literal["avg", "max"] = "avg"


class MixingParams(_Section):
    """Per-method settings; each method's train stage depends on its own section only.

    The fields ARE the list of mixing methods (:data:`MIXING_METHODS`), in table order; each field's title is
    the method's display name. Method ``m``'s code is ``memix/mixing/<m>_mixer.py``.
    """

    none: NoneMix = Field(NoneMix(), title="baseline")
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


# -------------------------------------------------------------------------------- eval / compare
class EvalParams(_Section):
    rules: list[Literal["last", "oracle"]] = ["last", "oracle"]


class CompareParams(_Section):
    methods: list[Literal[MIXING_METHODS]] = list(MIXING_METHODS)  # type: ignore[valid-type]
    seeds: list[int] = [0, 1, 2]
    baseline: Literal[MIXING_METHODS] = "none"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _non_empty(self) -> CompareParams:
        if not self.methods or not self.seeds:
            raise ValueError("methods and seeds must not be empty")
        if len(set(self.methods)) != len(self.methods) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("methods and seeds must not repeat")
        return self


class Params(_Section):
    """The whole of params.yaml."""

    dataset: DatasetParams = DatasetParams()
    synth: SynthParams = SynthParams()
    faces: FacesParams = FacesParams()
    flow: FlowParams = FlowParams()
    model: ModelParams = ModelParams()
    train: TrainParams = TrainParams()
    mixing: MixingParams = MixingParams()
    eval: EvalParams = EvalParams()
    compare: CompareParams = CompareParams()


def error_lines(err: ValidationError) -> list[str]:
    """One ``dotted.key: problem (got value)`` line per validation error, the form every params error uses."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return lines


def _format_errors(path: Path, err: ValidationError) -> str:
    return "\n".join([f"{path}: invalid params", *(f"  {line}" for line in error_lines(err))])


def parse_params(data: dict[str, Any] | None, path: str | Path = "params.yaml") -> Params:
    """Validate an already-read mapping; errors name ``path`` and the dotted key."""
    path = Path(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    try:
        return Params.model_validate(data)
    except ValidationError as err:
        raise ParamsError(_format_errors(path, err)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file (missing file = all defaults is NOT allowed: it is an error)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(data, path)


def dump_params(params: Params) -> dict[str, Any]:
    """Plain mapping in params.yaml's shape (aliases such as ``lambda`` restored)."""
    return params.model_dump(by_alias=True, mode="json")
