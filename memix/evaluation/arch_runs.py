"""Train and evaluate one run of the architecture comparison (``architectures.runs.<name>``): every method of the
run under the same LOSO, seeds and flow set as the mixing table, with the run's model and recipe.

Layout of ``data/arch/<run>/``: ``train/<method>/`` (the train stage's outputs), ``eval/<method>/`` (the evaluate
stage's), and ``run.json`` (the model, its trainable parameters here and in the authors' release), written last.
Every run is evaluated under ``eval.rules`` and the ``release`` rule (the run's network under its own release's
epoch selection, :mod:`memix.evaluation.release_rules`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memix import models
from memix.config import Params, arch_run_params
from memix.evaluation import evaluate, release_rules
from memix.io import atomic, flowset
from memix.models import registry
from memix.training import run as training
from memix.training.inputs import read_data

RUN_FILE = "run.json"


def trainable_parameters(params: Params, data: flowset.FlowSet) -> int:
    """Trainable parameters of the run's model for this dataset's classes and flow (built on the meta device)."""
    spec = params.model.model_copy(update={"pretrained": False, "weights_path": None})
    with torch.device("meta"):
        model = models.build(spec, data.flow.shape[1], data.num_classes, data.size)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def released(name: str) -> dict[str, Any] | None:
    """The authors' release as its module records it (count, class count, where), for a comparison architecture."""
    if not registry.is_architecture(name):
        return None
    return dict(registry.architecture(name).module.RELEASED)


def run(params: Params, name: str, flow_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Train and evaluate every method of run ``name`` into ``out_dir``; returns run.json's content."""
    run_params = arch_run_params(params, name)
    methods = list(params.architectures.runs[name].methods)
    for method in methods:
        registry.check_trainable(run_params.model.name, method)
    net = release_rules.network(run_params.model.model_dump(mode="json"))
    release_rules.release_rule(net)  # a network without a recorded release rule fails here, before training
    rules = list(dict.fromkeys([*run_params.eval.rules, "release"]))
    # key-frame noise is the train stage's (an architecture run scores the unshifted test clips only: its stage does
    # not depend on eval.keyframe_noise, see memix.config.loading.ARCH_IGNORES)
    eval_params = run_params.eval.model_copy(update={"rules": rules, "keyframe_noise": []})
    out_dir = Path(out_dir)
    data = read_data(run_params, flow_dir)
    for method in methods:
        training.run(run_params, method, flow_dir=flow_dir, out_dir=out_dir / "train" / method, data=data)
        evaluate.run(eval_params, method, train_dir=out_dir / "train" / method, out_dir=out_dir / "eval" / method,
                     network=net)
    content = {
        "run": name,
        "model": run_params.model.model_dump(mode="json"),
        "train": run_params.train.model_dump(mode="json"),
        "methods": methods,
        "seeds": sorted(params.compare.seeds),
        "trainable_params": trainable_parameters(run_params, data),
        "num_classes": data.num_classes,
        "released": released(run_params.model.name),
    }
    atomic.write_json(out_dir / RUN_FILE, content)
    return content
