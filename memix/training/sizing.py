"""How many LOSO units train as one group: from the CPU workers, or from a GPU's free memory and one unit's need.

Kept apart from the run (:mod:`memix.training.run`) and the grouping (:mod:`memix.training.grouping`): this module
only estimates memory and picks a size; a unit's result does not depend on it.
"""

from __future__ import annotations

import math

import torch

from memix import models
from memix.config import ModelParams, Params
from memix.io import flowset
from memix.training.executor import cpu_workers

GPU_MEMORY_SHARE = 0.8
"""Share of a GPU's free memory that ``fold_batch: auto`` plans to fill."""


def fold_batch(params: Params, device: torch.device, n_units: int, data: flowset.FlowSet) -> int:
    """Units per group. An integer is taken as given; ``auto`` splits the units evenly over the CPU worker
    processes (every core busy to the end), and on a GPU takes what fits in ``GPU_MEMORY_SHARE`` of free memory.
    A unit's result does not depend on its group, so this choice changes speed, not bytes."""
    wanted = params.train.fold_batch
    if wanted != "auto":
        return min(int(wanted), n_units)
    if device.type != "cuda":
        return math.ceil(n_units / cpu_workers(params, n_units))
    per_unit = unit_bytes(params, data, device)
    free, _ = torch.cuda.mem_get_info(device)
    return max(1, min(n_units, int(GPU_MEMORY_SHARE * free // per_unit)))


ACTIVATION_BYTES = 49
"""Bytes of activations a training step keeps per token, embedding channel and block (measured: ViT-B/16, bf16,
batch 34); used where the activations cannot be measured (no GPU)."""


def unit_bytes(params: Params, data: flowset.FlowSet, device: torch.device | None = None) -> int:
    """Device memory of one unit in training: fp32 weights, gradients and two Adam moments (counted on a model
    built on the meta device: nothing allocated, nothing downloaded), plus the activations of one measured
    forward/backward pass of a one-unit group on ``device`` when it is a GPU, else ``ACTIVATION_BYTES`` per token x
    channel x block for a ViT and :func:`saved_activation_bytes` for a comparison network. An estimate that turns
    out short is caught: a group out of memory is halved."""
    spec = params.model.model_copy(update={"pretrained": False, "weights_path": None})
    with torch.device("meta"):
        model = models.build(spec, data.flow.shape[1], data.num_classes, data.size)
    n_params = sum(p.numel() for p in model.parameters())
    if device is not None and device.type == "cuda":
        return 16 * n_params + _measured_activations(spec, data, device, params.train.batch_size)
    if not isinstance(model, models.FlowModel):  # a comparison architecture: what its autograd graph keeps
        return 16 * n_params + saved_activation_bytes(spec, data, params.train.batch_size)
    tokens = model.grid * model.grid + 1
    return 16 * n_params + params.train.batch_size * tokens * model.vit.embed_dim * model.depth * ACTIVATION_BYTES


def saved_activation_bytes(spec: ModelParams, data: flowset.FlowSet, batch: int) -> int:
    """Bytes autograd keeps for the backward of one training forward of ``batch`` samples, counted from the saved
    tensors' shapes on the meta device (nothing is computed or allocated; a tensor saved by two ops counts twice)."""
    saved: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t.numel() * t.element_size())
        return t

    with torch.device("meta"):
        model = models.build(spec, data.flow.shape[1], data.num_classes, data.size).train()
        x = torch.zeros((batch, data.flow.shape[1], data.size, data.size))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x)
    return int(sum(saved))


def _measured_activations(spec: ModelParams, data: flowset.FlowSet, device: torch.device, batch: int) -> int:
    """Peak memory of one bf16 forward/backward of a one-unit group (attention row on), past weights and grads."""
    model = models.group([models.build(spec, data.flow.shape[1], data.num_classes, data.size)]).to(device)
    model.train()
    model.dropout_generators = [torch.Generator()]
    x = torch.zeros((1, batch, data.flow.shape[1], data.size, data.size), device=device)
    face = None
    if spec.face_stream:
        face = torch.zeros((1, batch, 1, *data.onset.shape[1:]), device=device)
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        model(x, face=face, need_attention=True).float().sum().backward()
    torch.cuda.synchronize(device)
    grads = sum(p.numel() * p.element_size() for p in model.parameters())
    peak = torch.cuda.max_memory_allocated(device) - base - grads
    del model, x, face
    torch.cuda.empty_cache()
    return max(int(peak), 0)
