"""Typed parameters: the single schema behind ``params.yaml``.

Every stage reads its section through :func:`load_params`, so an unknown key, a value of the wrong type or one out
of range fails before any work starts, with an error naming the key and the file. One module per concern:
:mod:`~memix.config.base` (what every section shares), :mod:`~memix.config.data` (dataset, synth, faces, flow),
:mod:`~memix.config.training` (model, train, mixing), :mod:`~memix.config.model_options` (``model.name`` and
``model.options`` against what each network declares), :mod:`~memix.config.results` (eval, compare, fit) and
:mod:`~memix.config.loading` (the whole file); every name is importable from ``memix.config``.
"""

from __future__ import annotations

from memix.config.architectures import ArchitecturesParams, ArchRun
from memix.config.base import ParamsError, Section
from memix.config.data import (
    COMPOSITE,
    DATASET_NAMES,
    ClipExclusion,
    ClipPatch,
    DatasetParams,
    DISParams,
    FacesParams,
    FarnebackParams,
    FlowParams,
    SourceParams,
    SynthParams,
    TVL1Params,
)
from memix.config.loading import (
    AliasError,
    DuplicateKeyError,
    Params,
    arch_run_inputs,
    arch_run_params,
    dump_params,
    error_lines,
    load_params,
    parse_params,
)
from memix.config.results import TRANSFER_PROTOCOLS, CompareParams, EvalParams, FitParams, TransferParams
from memix.config.training import MIXING_METHODS, AugmentParams, MixingParams, ModelParams, TrainParams, method_title

__all__ = [
    "AliasError",
    "ArchRun",
    "ArchitecturesParams",
    "COMPOSITE",
    "DATASET_NAMES",
    "MIXING_METHODS",
    "AugmentParams",
    "ClipExclusion",
    "ClipPatch",
    "CompareParams",
    "DISParams",
    "DatasetParams",
    "DuplicateKeyError",
    "EvalParams",
    "FacesParams",
    "FarnebackParams",
    "FitParams",
    "TRANSFER_PROTOCOLS",
    "TransferParams",
    "FlowParams",
    "MixingParams",
    "ModelParams",
    "Params",
    "ParamsError",
    "SourceParams",
    "Section",
    "SynthParams",
    "TVL1Params",
    "TrainParams",
    "arch_run_inputs",
    "arch_run_params",
    "dump_params",
    "error_lines",
    "load_params",
    "method_title",
    "parse_params",
]
