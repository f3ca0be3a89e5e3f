"""Typed parameters: the single schema behind ``params.yaml``.

Every stage reads its section through :func:`load_params`, so an unknown key, a value of the wrong
type or one out of range fails before any work starts, with an error naming the key and the file.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memix.io import paths


class ParamsError(ValueError):
    """A params file that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


# --------------------------------------------------------------------------------------- dataset
DatasetName = Literal["casme2", "samm", "smic", "casme3", "mmew"]
DATASET_NAMES: tuple[str, ...] = ("casme2", "samm", "smic", "casme3", "mmew")
COMPOSITE = "composite"


class ClipPatch(_Section):
    """One coding-sheet correction, keyed by (Subject, Filename) as the sheet spells them, never by row.

    ``onset`` (the sheet's onset before any patch) picks one of several MEs sharing a Filename (CAS(ME)^3);
    ``source`` names the dataset of a composite the patch belongs to.
    """

    source: DatasetName | None = None
    subject: str | int
    filename: str
    onset: int | None = None
    field: Literal["onset", "apex", "offset", "emotion", "action_units"]
    value: int | str


class ClipExclusion(_Section):
    """A clip left out by key, e.g. one a published sample list does not hold; reported with ``reason``."""

    source: DatasetName | None = None
    subject: str | int
    filename: str
    onset: int | None = None
    reason: str = Field(..., min_length=1)


class SourceParams(_Section):
    """One dataset of a composite: its adapter, its folder (relative to ``dataset.root``) and its coding sheet."""

    name: DatasetName
    root: str
    sheet: str | None = Field(None, description="coding sheet relative to this source's root; null = its one .xlsx")
    camera: Literal["hs", "vis", "nir"] | None = Field(None, description="smic only: hs | vis | nir; null = hs")

    @model_validator(mode="after")
    def _camera(self) -> SourceParams:
        if self.camera is not None and self.name != "smic":
            raise ValueError(f"camera is a smic setting; {self.name} has none (leave it null)")
        return self


def _inside(path: str) -> bool:
    """A relative path that stays inside its parent folder (no absolute path, no '..')."""
    pure = PurePosixPath(path.replace("\\", "/"))
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and not PureWindowsPath(path).drive


class DatasetParams(_Section):
    """Which dataset (or composite of datasets) the pipeline ingests and how coding sheets are read.

    One dataset: ``name``, ``root`` and ``sheet``. A composite: ``name: composite`` and ``sources``, each source's
    root a folder inside ``root``, so DVC's one dependency on ``root`` covers every source (and nothing else
    if ``root`` holds only them). Subject ids of a composite are namespaced by source (``casme2/sub01``).
    """

    name: DatasetName | Literal["composite"] = "casme2"
    root: str = "data/raw/synthetic"
    sheet: str | None = Field(None, description="coding sheet path relative to root; null = the one .xlsx in root")
    camera: Literal["hs", "vis", "nir"] | None = Field(None, description="smic only: hs | vis | nir; null = hs")
    sources: list[SourceParams] = Field([], description="name: composite only: the datasets merged, in order")
    classes: Literal["5class", "3class", "megc3", "7class"] = "5class"
    on_bad_apex: Literal["patch", "drop"] = "patch"
    on_bad_frame: Literal["error", "skip"] = Field(
        "error", description="a truncated or undecodable frame: stop naming it, or leave its clip out and report it"
    )
    patches: list[ClipPatch] = Field([], description="sheet corrections applied before validation, each reported")
    exclude: list[ClipExclusion] = Field([], description="clips left out by key (a published sample list), reported")

    @model_validator(mode="after")
    def _sources(self) -> DatasetParams:
        if self.name == COMPOSITE:
            if not self.sources:
                raise ValueError("name: composite needs a non-empty sources list")
            if self.sheet is not None or self.camera is not None:
                raise ValueError("a composite sets sheet and camera per source (dataset.sources), not here")
            names = [s.name for s in self.sources]
            if len(set(names)) != len(names):
                raise ValueError(f"sources must name each dataset once, got {names}")
            for i, source in enumerate(self.sources):
                if not _inside(source.root):
                    raise ValueError(
                        f"sources[{i}].root {source.root!r} must be a folder inside dataset.root (relative, no '..'), "
                        "so that the ingest stage's dependency on dataset.root covers it"
                    )
        else:
            if self.sources:
                raise ValueError(f"sources are for name: composite (name is {self.name!r})")
            if self.camera is not None and self.name != "smic":
                raise ValueError(f"camera is a smic setting; {self.name} has none (leave it null)")
        names = self.source_names()
        for kind, entries in (("patches", self.patches), ("exclude", self.exclude)):
            for i, entry in enumerate(entries):
                if entry.source is None and len(names) > 1:
                    raise ValueError(f"{kind}[{i}]: a composite needs the entry's source (one of {names})")
                if entry.source is not None and entry.source not in names:
                    raise ValueError(f"{kind}[{i}]: source {entry.source!r} is not ingested (have {names})")
        return self

    def source_names(self) -> list[str]:
        return [s.name for s in self.sources] if self.name == COMPOSITE else [self.name]

    def source_list(self) -> list[SourceParams]:
        """The datasets to ingest: the composite's sources, or the one dataset (its root is ``root`` itself)."""
        if self.name == COMPOSITE:
            return list(self.sources)
        return [SourceParams(name=self.name, root=".", sheet=self.sheet, camera=self.camera)]


# ----------------------------------------------------------------------------------------- synth
SynthLayout = Literal["casme2", "samm", "smic", "casme3", "mmew"]


class SynthParams(_Section):
    """The generated dataset (see memix.synth): CASME II's layout by default, or any adapter's, or several."""

    layout: SynthLayout | list[SynthLayout] = Field(
        "casme2", description="one layout written at the output folder, or a list: one sub-folder per layout"
    )
    seed: int = 0
    subjects: int = Field(10, ge=2, le=99)
    clips: int = Field(120, ge=5)
    frame_size: int = Field(256, ge=128, le=1024)
    face_size: int = Field(150, ge=64, le=900)
    first_frame_min: int = Field(1, ge=1)
    first_frame_max: int = Field(3000, ge=1)
    frames_min: int = Field(10, ge=5)
    frames_max: int = Field(30, ge=5)
    apex_px_min: float = Field(4.0, ge=0.0)
    apex_px_max: float = Field(7.0, ge=0.0)
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
        if isinstance(self.layout, list) and (not self.layout or len(set(self.layout)) != len(self.layout)):
            raise ValueError("layout must be a name or a non-empty list of names without repeats")
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
    size: int = Field(56, ge=8, le=1024)
    channels: list[Literal["u", "v", "strain"]] = ["u", "v", "strain"]
    workers: int = Field(0, ge=0, description="process pool size; 0 = CPU count")
    shard_mb: float = Field(64.0, gt=0.0)
    montage_per_class: int = Field(3, ge=1)
    outlier_factor: float = Field(
        8.0, gt=1.0, description="a clip whose largest flow magnitude exceeds this times the median clip's is listed"
    )
    on_outlier: Literal["keep", "drop"] = Field("keep", description="listed clips (outliers, no motion): keep or drop")
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
    patch_size: int = Field(4, ge=1)
    embed_dim: int = Field(16, ge=8)
    depth: int = Field(2, ge=1)
    num_heads: int = Field(1, ge=1)
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

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(8, ge=2)
    optimizer: Literal["adam", "adamw"] = "adamw"
    lr: float = Field(3e-3, gt=0.0)
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
    k_offset: int = Field(14, ge=0)
    k: int = Field(40, ge=1, description="patches mixed when k_mode is fixed (clipped to the grid)")
    mix_alpha: float = Field(1.0, gt=0.0)
    pool: Literal["avg", "max"] = "avg"


class MixingParams(_Section):
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


# -------------------------------------------------------------------------------- eval / compare
class EvalParams(_Section):
    """Which epoch-selection rules each method's evaluation reports (``oracle`` = test-set selection)."""

    rules: list[Literal["last", "oracle"]] = ["last", "oracle"]


class CompareParams(_Section):
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
        return self


class FitParams(_Section):
    """The model kept for prediction (stage ``fit``): trained on every subject with the train/model/mixing params."""

    methods: list[Literal[MIXING_METHODS]] = ["memix"]  # type: ignore[valid-type]
    seed: int = 0

    @model_validator(mode="after")
    def _unique(self) -> FitParams:
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ValueError("methods must be a non-empty list without repeats")
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
    fit: FitParams = FitParams()


def error_lines(err: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One ``dotted.key: problem (got value)`` line per validation error, the form every params error uses.

    With the ``model`` validated, an unknown key also gets the closest valid name and the valid names.
    """
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key{_valid_keys_hint(model, e['loc'])}")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return lines


def _valid_keys_hint(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> str:
    """`` (did you mean train?; valid keys: ...)`` for an unknown key at ``loc`` of ``model``, if it can tell."""
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        candidates = [field.annotation, *typing.get_args(field.annotation)] if field is not None else []
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if model is None:
        return ""
    names = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    guess = f"did you mean {close[0]}? " if close else ""
    return f" ({guess}valid keys: {', '.join(names)})"


def _format_errors(path: Path, err: ValidationError) -> str:
    return "\n".join([f"{path}: invalid params", *(f"  {line}" for line in error_lines(err, Params))])


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
        data = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # a SafeLoader that refuses duplicate keys
    except DuplicateKeyError as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(data, path)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names a key twice: PyYAML would keep the last silently, DVC refuses the file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, as DVC's YAML parser does."""


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise DuplicateKeyError(
                f"line {line}: duplicate key {key!r} (first on line {seen[key]}); a key may appear once per "
                "section (YAML would keep the last value silently, and DVC refuses the file)"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def dump_params(params: Params) -> dict[str, Any]:
    """Plain mapping in params.yaml's shape (aliases such as ``lambda`` restored)."""
    return params.model_dump(by_alias=True, mode="json")
