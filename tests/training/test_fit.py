"""Fitting on every subject: all clips train, normalisation from all clips, same bytes twice, the model learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flowsets import CLIPS_PER_SUBJECT, SUBJECTS, make_flow_set

from memix import models
from memix.config import parse_params
from memix.io import flowset
from memix.training import fit


def tiny_params(epochs: int = 3):
    return parse_params({
        "model": {"patch_size": 4, "embed_dim": 16, "depth": 1, "num_heads": 2},
        "train": {"epochs": epochs, "batch_size": 8, "device": "cpu", "threads": 1},
    })


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> flowset.FlowSet:
    return flowset.read(make_flow_set(tmp_path_factory.mktemp("fit") / "flow"))


def test_the_fit_fold_trains_on_every_clip_with_seeds_apart_from_every_loso_fold(data: flowset.FlowSet) -> None:
    fold = fit.all_subjects_fold(data)
    assert fold.train_rows.tolist() == list(range(SUBJECTS * CLIPS_PER_SUBJECT))
    assert fold.index == SUBJECTS  # LOSO folds are 0 .. SUBJECTS - 1


def test_fit_uses_all_clips_statistics_and_gives_the_same_weights_twice(data: flowset.FlowSet) -> None:
    params = tiny_params()
    a = fit.fit(params, "memix", 0, data, torch.device("cpu"))
    b = fit.fit(params, "memix", 0, data, torch.device("cpu"))
    c = fit.fit(params, "memix", 1, data, torch.device("cpu"))
    mean, std = flowset.channel_stats(data.index, data.channels)
    np.testing.assert_allclose(a.mean, mean)
    np.testing.assert_allclose(a.std, std)
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert not all(torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)
    assert len(a.history["train_loss"]) == params.train.epochs and np.isfinite(a.history["train_loss"]).all()
    assert (a.n_clips, a.n_subjects) == (SUBJECTS * CLIPS_PER_SUBJECT, SUBJECTS)


def test_the_fitted_weights_load_into_the_pipeline_model_and_classify_the_clips(data: flowset.FlowSet) -> None:
    params = tiny_params(epochs=30)
    result = fit.fit(params, "none", 0, data, torch.device("cpu"))
    net = models.build(params.model, len(data.channels), data.num_classes, data.size)
    net.load_state_dict(result.state_dict)
    x = torch.from_numpy(np.array(data.flow, dtype=np.float32))
    m = torch.tensor(result.mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(result.std, dtype=torch.float32).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = net.eval()((x - m) / s).argmax(-1).numpy()
    assert (pred == data.labels).mean() >= 0.8  # 3 classes; measured 1.0


def test_an_unknown_method_is_named(data: flowset.FlowSet) -> None:
    with pytest.raises(ValueError, match="mixpu"):
        fit.fit(tiny_params(), "mixpu", 0, data, torch.device("cpu"))
