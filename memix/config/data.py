"""Params of the data stages: the dataset and its corrections, the synthetic generator, faces and flow."""

from __future__ import annotations

from pathlib import PurePosixPath, PureWindowsPath
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from memix.config.base import Section
from memix.io import paths

# --------------------------------------------------------------------------------------- dataset
DatasetName = Literal["casme2", "samm", "smic", "casme3", "mmew"]
DATASET_NAMES: tuple[str, ...] = ("casme2", "samm", "smic", "casme3", "mmew")
COMPOSITE = "composite"


class ClipPatch(Section):
    """One coding-sheet correction, keyed by (Subject, Filename) as the sheet spells them, never by row.

    ``onset`` (the sheet's onset before any patch) picks one of several MEs sharing a Filename (CAS(ME)^3);
    ``source`` names the dataset of a composite the patch belongs to.
    """

    source: DatasetName | None = None
    subject: str | int
    filename: str
    onset: int | None = None
    field: Literal["onset", "apex", "offset", "emotion", "action_units", "filename", "objective"]
    value: int | str

    @model_validator(mode="after")
    def _filename(self) -> ClipPatch:
        if self.field == "filename" and not str(self.value).strip():
            raise ValueError("a filename patch needs a non-empty value (the take or clip folder's name)")
        return self


class ClipExclusion(Section):
    """A clip left out by key, e.g. one a published sample list does not hold; reported with ``reason``."""

    source: DatasetName | None = None
    subject: str | int
    filename: str
    onset: int | None = None
    reason: str = Field(..., min_length=1)


class SourceParams(Section):
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


class DatasetParams(Section):
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
    classes: Literal["5class", "3class", "megc3", "7class", "objective"] = Field(
        "5class", description="objective = the sheets' objective classes I-V (MEGC 2018; VI and VII left out, counted)"
    )
    apex: Literal["annotated", "middle", "spotted"] = Field(
        "annotated",
        description="the apex used: the sheet's, the middle frame, or the frame of greatest motion from the onset "
        "(spotted on the aligned faces by the faces stage)",
    )
    on_bad_apex: Literal["patch", "drop", "spot"] = Field(
        "patch", description="an impossible apex (missing, outside the clip, = onset): middle frame | drop | spotted"
    )
    on_bad_frame: Literal["error", "skip"] = Field(
        "error", description="a truncated or undecodable frame: stop naming it, or leave its clip out and report it"
    )
    max_frame_side: int = Field(
        8192, ge=16, description="an image larger than this many px a side is refused from its header, undecoded"
    )
    errata: Literal["builtin", "none"] = Field(
        "builtin", description="the known sheet errata shipped in memix/datasets/errata/, applied and reported"
    )
    protocol: Literal["megc2019", "classes"] = Field(
        "megc2019", description="classes megc3: the MEGC 2019 sample list (megc2019) or the class rule alone"
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


class SynthParams(Section):
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
class FacesParams(Section):
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
class TVL1Params(Section):
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


class FarnebackParams(Section):
    """cv2.calcOpticalFlowFarneback; defaults are the released MEMix code's settings."""

    pyr_scale: float = Field(0.5, gt=0.0, lt=1.0)
    levels: int = Field(3, ge=1)
    winsize: int = Field(15, ge=3)
    iterations: int = Field(3, ge=1)
    poly_n: int = Field(5, ge=3)
    poly_sigma: float = Field(1.2, gt=0.0)
    flags: int = Field(0, ge=0)


class DISParams(Section):
    """cv2.DISOpticalFlow preset."""

    preset: Literal["ultrafast", "fast", "medium"] = "medium"


class FlowParams(Section):
    """Onset -> apex optical flow, its channels and output size."""

    method: Literal["tvl1", "farneback", "dis"] = "tvl1"
    size: int = Field(56, ge=8, le=1024)
    channels: list[Literal["u", "v", "strain"]] = ["u", "v", "strain"]
    pairs: list[Literal["onset_apex", "apex_offset"]] = Field(
        ["onset_apex"], description="frame pairs whose flow is stored: onset_apex always; apex_offset adds the "
        "relaxation flow the whole-sequence networks read (CausalNet)",
    )
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
        if len(set(self.pairs)) != len(self.pairs) or self.pairs[:1] != ["onset_apex"]:
            raise ValueError("pairs must start with onset_apex and may add apex_offset, without repeats")
        return self
