"""No host synchronisation inside an epoch's steps: a step reads no tensor value on the host (``.item()``,
``bool()``, ``int()``, ``.tolist()``, ``.numpy()``, ``.cpu()``, ``nonzero``), so on a GPU the host never waits for
the device between steps; host-to-device copies of the per-unit CPU draws go through pinned memory without waiting.
The only reads allowed are of the per-unit CPU generators' own draws (``numpy_rng`` seeds numpy from one), which
never touch the device."""

from __future__ import annotations

import sys

import pytest
import torch
from step_cases import step_params, unequal_units

from memix.config import MIXING_METHODS
from memix.training import loop

READS = ("item", "__bool__", "__int__", "__float__", "__index__", "tolist", "numpy", "cpu", "nonzero")
ALLOWED_CALLERS = {"numpy_rng"}  # reads a CPU generator's draw, never device data


def _host_reads_in_steps(monkeypatch, params, method, data) -> list[tuple[str, str]]:
    reads: list[tuple[str, str]] = []
    in_step = [False]
    for name in READS:
        original = getattr(torch.Tensor, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            if in_step[0]:
                reads.append((_name, sys._getframe(1).f_code.co_name))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, spy)
    step = loop.GroupTrainer._step

    def watched(self, i):
        in_step[0] = True
        try:
            step(self, i)
        finally:
            in_step[0] = False

    monkeypatch.setattr(loop.GroupTrainer, "_step", watched)
    loop.train_group(params, method, unequal_units(data), data, torch.device("cpu"))
    return reads


@pytest.mark.parametrize("method", [*MIXING_METHODS, "mixmeformer"])
def test_a_training_step_reads_no_tensor_on_the_host(data, monkeypatch, method):
    torch.set_num_threads(1)
    params = step_params(batch_size=4, face_stream=method == "mixmeformer")
    reads = _host_reads_in_steps(monkeypatch, params, "memix" if method == "mixmeformer" else method, data)
    assert reads, "the spy saw nothing: it is not watching the step"  # numpy_rng reads its seed once per unit
    assert {caller for _, caller in reads} <= ALLOWED_CALLERS, sorted(set(reads))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the CPU test above covers the same reads)")
@pytest.mark.parametrize("method", ["none", "memix", "remix", "manifold_mixup", "balanced_mixup", "mixaugment"])
def test_a_training_step_does_not_synchronise_a_gpu(data, monkeypatch, method):
    step = loop.GroupTrainer._step

    def strict(self, i):
        torch.cuda.set_sync_debug_mode("error")
        try:
            step(self, i)
        finally:
            torch.cuda.set_sync_debug_mode("default")

    monkeypatch.setattr(loop.GroupTrainer, "_step", strict)
    params = step_params(batch_size=4, face_stream=False)
    loop.train_group(params, method, unequal_units(data), data, torch.device("cuda"))
