"""One fold at a time, the plain way: the reference the fold-batched trainer is held to.

A timm-backed :class:`memix.models.flow_model.FlowModel` per fold, ``torch.optim.Adam(W)``, and the same draws as
the trainer (per-fold generators for batch order, augmentation and mixing). Test code only: nothing here is fast.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memix import mixing, models
from memix.config import Params
from memix.io.flowset import FlowSet
from memix.training.augment import augment_batch
from memix.training.folds import Fold, fold_stats
from memix.training.loop import batch_bounds, soft_cross_entropy, unit_seeds


def train_one_fold(params: Params, method: str, seed: int, fold: Fold, data: FlowSet) -> torch.Tensor:
    """Test probabilities (evaluated epochs, n_test, K) of one fold trained alone on the CPU."""
    tp = params.train
    seeds = unit_seeds(seed, fold.index)
    mean, std = fold_stats(data.index, fold, data.channels)
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
    flow = torch.from_numpy(np.asarray(data.flow, dtype=np.float32))
    labels = torch.as_tensor(data.labels)
    faces = None
    if params.model.face_stream:
        faces = torch.from_numpy(np.asarray(data.onset)).to(torch.float32).div(255.0).unsqueeze(1)
    tr, te = torch.as_tensor(fold.train_rows), torch.as_tensor(fold.test_rows)
    x_train, y_train = flow[tr], labels[tr]
    x_test, y_test = (flow[te] - m) / s, labels[te]

    torch.manual_seed(seeds["init"])
    model = models.build(params.model, flow.shape[1], data.num_classes, flow.shape[-1])
    opt_cls = torch.optim.AdamW if tp.optimizer == "adamw" else torch.optim.Adam
    opt = opt_cls(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay, foreach=True)
    mixer = mixing.get(method, num_classes=data.num_classes, patch_size=model.patch_size,
                       label_smoothing=tp.label_smoothing, **getattr(params.mixing, method).model_dump())
    mixer.fit_to_depth(model.depth)
    mixer.bind(y_train, (x_train - m) / s if mixer.needs_inputs else None)
    gens = {k: torch.Generator().manual_seed(seeds[k]) for k in ("data", "augment", "mix")}
    bounds = batch_bounds(len(tr), tp.batch_size)
    probs = []
    model.train()
    for epoch in range(tp.epochs):
        perm = torch.randperm(len(tr), generator=gens["data"])
        for lo, hi in bounds:
            idx = perm[lo:hi]
            xb, yb = x_train[idx], y_train[idx]
            fb = None if faces is None else faces[tr][idx]
            xb, fb = augment_batch(xb, gens["augment"], tp.augment, face=fb)
            xb = (xb - m) / s
            plan = mixer.mix_inputs(xb, yb, gens["mix"])
            logits = model(plan.x, face=fb, manifold=plan.manifold, need_attention=mixer.needs_attention)
            targets = mixer.mix_targets(plan, model.cls_attention if mixer.needs_attention else None)
            loss = soft_cross_entropy(logits, targets)
            if mixer.clean_loss:
                loss = loss + F.cross_entropy(model(xb, face=fb).float(), yb, label_smoothing=tp.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if (epoch + 1) % tp.eval_every == 0 or epoch + 1 == tp.epochs:
            model.eval()
            with torch.no_grad():
                f = None if faces is None else faces[te]
                probs.append(torch.softmax(model(x_test, face=f).float(), dim=-1))
            model.train()
    assert len(y_test) == probs[0].shape[0]
    return torch.stack(probs)
