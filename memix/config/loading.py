"""The whole params file: :class:`Params` from YAML, strict about duplicate keys, with errors that name the key, the
file and the valid names."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError, model_validator

from memix.config.architectures import ArchitecturesParams
from memix.config.base import ParamsError, Section
from memix.config.data import DatasetParams, FacesParams, FlowParams, SynthParams
from memix.config.results import CompareParams, EvalParams, FitParams, TransferParams
from memix.config.training import MixingParams, ModelParams, TrainParams
from memix.names import ARCHITECTURES, ATTENTION_METHODS, REGION_INPUTS


class Params(Section):
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
    architectures: ArchitecturesParams = ArchitecturesParams()
    transfer: TransferParams = TransferParams()

    @model_validator(mode="after")
    def _recipes_are_valid_training_params(self) -> Params:
        for name in self.architectures.runs:
            try:
                arch_run_params(self, name)
            except ValidationError as err:
                raise ValueError(f"architectures.runs.{name}.train: {'; '.join(error_lines(err))}") from None
        return self

    @model_validator(mode="after")
    def _transfer_needs_sources(self) -> Params:
        """A cross-dataset protocol needs a composite of at least two sources (each one a side of a split)."""
        if self.transfer.protocols and len(self.dataset.sources) < 2:
            raise ValueError(
                f"transfer.protocols {self.transfer.protocols} train on some datasets and test on another: they "
                "need dataset.name: composite with at least two sources (or set transfer.protocols: [])"
            )
        return self

    @model_validator(mode="after")
    def _methods_defined_for_the_model(self) -> Params:
        """TransMix and MEMix need a ViT's CLS attention over patches: refused for a comparison architecture."""
        if self.model.name not in ARCHITECTURES:
            return self
        for key, methods in (("compare.methods", self.compare.methods), ("fit.methods", self.fit.methods)):
            bad = [m for m in methods if m in ATTENTION_METHODS]
            if bad:
                raise ValueError(
                    f"{key} has {bad}, which weight labels by a ViT's CLS attention over the flow patches; model.name "
                    f"{self.model.name!r} is a comparison architecture without one (leave them out, or use a ViT)"
                )
        return self  # model.face_stream with an architecture: ModelParams refuses it, at its key

    @model_validator(mode="after")
    def _region_networks_get_their_inputs(self) -> Params:
        """HTNet and CausalNet read region images (no augmentation: it would move the blocks across one another);
        CausalNet reads the apex -> offset flow and three flow channels too. Checked here, before any stage runs."""
        models = [("model", "train", self.model.name, self.train)]
        models += [(f"architectures.runs.{name}.model", f"architectures.runs.{name}.train", run.model.name,
                    arch_run_params(self, name).train) for name, run in self.architectures.runs.items()]
        for model_key, train_key, name, train in models:
            if name not in REGION_INPUTS:
                continue
            aug = train.augment
            if aug.flip or aug.rotate_deg or aug.translate_frac:
                raise ValueError(f"{train_key}.augment: {name} reads {REGION_INPUTS[name]} images, four facial-region "
                                 "blocks side by side that a flip, rotation or shift would move across one another "
                                 "(its release does not augment): set {flip: false, rotate_deg: 0.0, "
                                 "translate_frac: 0.0}")
            if REGION_INPUTS[name] == "sequence" and ("apex_offset" not in self.flow.pairs
                                                      or self.flow.channels != ["u", "v", "strain"]):
                raise ValueError(f"{model_key}.name {name!r} reads the apex -> offset flow and 3-channel images: set "
                                 "flow.pairs: [onset_apex, apex_offset] and flow.channels: [u, v, strain]")
        return self


ARCH_IGNORES = ("keyframe_noise", "keyframe_noise_seed")
"""``eval`` keys an architecture run does not read: key-frame noise is scored by the train stage's runs only (an
architecture run is evaluated on the unshifted test clips), so changing it leaves every ``arch@<run>`` up to date."""


def arch_run_params(params: Params, name: str) -> Params:
    """The params run ``name`` of ``architectures.runs`` trains with: its model, the top-level ``train`` with its
    recipe on top (device, threads and workers stay the machine's), everything else as the file says."""
    run = params.architectures.runs[name]
    train = TrainParams.model_validate({**params.train.model_dump(), **run.train})
    return params.model_copy(update={"model": run.model, "train": train})


def arch_run_inputs(params: Params, name: str) -> dict[str, Any]:
    """Every value run ``name`` of ``architectures.runs`` reads, resolved: its model, the train settings it trains
    with (the top-level ``train`` under its recipe), its methods, their ``mixing`` sections, ``eval`` and the seeds.

    Stage ``arch@<name>`` depends on these alone (``check_params`` writes them to ``data/arch_params/<name>.json``):
    a top-level ``train`` key its recipe sets, another method's mixing or another run changes nothing here.
    """
    run = params.architectures.runs[name]
    run_params = arch_run_params(params, name)
    return {
        "run": name,
        "model": run_params.model.model_dump(mode="json"),
        "train": run_params.train.model_dump(mode="json"),
        "methods": list(run.methods),
        "mixing": {m: getattr(params.mixing, m).model_dump(mode="json", by_alias=True) for m in run.methods},
        "eval": params.eval.model_dump(mode="json", exclude=set(ARCH_IGNORES)),
        "seeds": list(params.compare.seeds),
    }


def error_lines(err: ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One ``dotted.key: problem (got value)`` line per validation error, the form every params error uses.

    With the ``model`` validated, an unknown key also gets the closest valid name and the valid names.
    """
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key{_valid_keys_hint(model, e['loc'])}")
        elif e["type"] == "model_option_unknown":  # its message names the valid options
            lines.append(f"{key}: {e['msg']}")
        elif not e["loc"]:  # a check across sections: its message names the keys
            lines.append(f"{key}: {e['msg']}")
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
    except (DuplicateKeyError, AliasError) as err:
        raise ParamsError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    return parse_params(data, path)


class DuplicateKeyError(yaml.YAMLError):
    """A mapping that names a key twice: PyYAML would keep the last silently, DVC refuses the file."""


class AliasError(yaml.YAMLError):
    """An anchor (``&name``) or alias (``*name``): refused before anything is expanded (a few lines of nested
    aliases expand to gigabytes), and a params file DVC tracks key by key should spell each value out."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys, as DVC's YAML parser does, and anchors and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            raise AliasError(
                f"line {event.start_mark.line + 1}: YAML {kind}{event.anchor}: a params file takes no anchors (&name) "
                "or aliases (*name, <<: *name), refused before any is expanded (nested aliases make gigabytes of a "
                "few lines); write the values out"
            )
        return super().compose_node(parent, index)


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
