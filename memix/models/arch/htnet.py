"""HTNet: a hierarchical transformer on four facial-region flow blocks (eyes and mouth corners) composed into one image.

Paper: Zhifeng Wang, Kaihao Zhang, Wenhan Luo, Ramesh Sankaranarayana, "HTNet for micro-expression recognition",
arXiv 2307.14637 (July 2023); published in Neurocomputing 602 (2024) 128196 (the release README's citation).

Release read (no licence: read to learn the architecture; nothing here is copied): github wangzhifengharrison/HTNet at
commit 91cf4bda0a2db50d638d46c04c5d7cf3b602d446, ``Model.py`` (class ``HTNet``, lines 107-172, and its parts:
channel LayerNorm 11-21, pre-norm 23-30, feed-forward 32-43, attention 45-75, aggregate 77-82, transformer 84-105)
and ``main_HTNet.py`` (data, training and evaluation). The ``Fusionmodel`` classes (Model.py 174-195,
main_HTNet.py 132-159) are never used by the training script and are left out. ``convert_released`` renames the
release's state dict for this module; with the release's weights copied in, the logits agreed with the release's
code to float32 rounding (checked outside this repository, where the release and einops were importable).

The network as released (main_HTNet.py 222-231: image 28, patch 7, dim 256, heads 3, three hierarchies, block
repeats (2, 2, 10), 3 classes; MLP multiplier 4, 3 channels and dropout 0 are the class defaults)::

    x (B, C, 28, 28) -> space-to-depth of 7 x 7 patches, channels ordered (row in patch, column in patch, channel)
    -> 1x1 conv to dim -> (B, dim, 4, 4)
    for level 2, 1, 0 (dims dim * 1, 2, 4; heads heads * 1, 2, 4; depths block_repeats):
        cut the map into 2**level x 2**level blocks; on every block a transformer: add a learned position vector of
        length seq_len = (4 // 2**2)**2 = 1 (broadcast over channels), then per layer x + attn(LN(x)), x + ff(LN(x))
        put the blocks back; then (not at level 0) conv 3x3 (pad 1) to the next dim, LN, max pool 3 stride 2 pad 1
    -> LN -> mean over H, W -> linear -> logits

The layers (channel LN, 1x1-conv attention and feed-forward, the levels and their aggregate) are
:mod:`memix.models.arch.hierarchy`'s, which describes them: attention heads are dim // heads wide (255 of 256 channels
at 3 heads). The release's ``dim_head`` argument (default 64) is ignored by its own attention, so it is not offered
here.

At the release's sizes every transformer sees ONE token per block (the 4 x 4 map is cut into 4 x 4 blocks, then the
2 x 2 map into 2 x 2, then the 1 x 1 map into one), so the softmax is over a single key and equals 1: attention
reduces to the value/output projections, the per-area self-attention the paper describes mixes nothing spatially, and
only the 3x3 aggregate convolutions combine the regions. Hence at those sizes the q and k projections (22,195,200 of
the 139,582,982 trainable parameters) never change the output and get no gradient, and neither does the last level's
position value (a constant over channels that every following channel LN removes); they are kept so the count and
the release's weights match. Larger ``img_size`` / smaller ``patch_size`` give real attention over seq_len tokens
per block (the map must be divisible by 2**(num_hierarchies - 1)).

Inputs (``INPUTS = "regions"``): (B, in_chans, img_size, img_size) images already composed of four flow blocks:
main_HTNet.py 202-204 put [block at landmark 0 | block at landmark 1] on top and [landmark 3 | landmark 4] below,
each block 14 x 14 of the 28 x 28 flow image (u, v, optical strain) centred on an MTCNN landmark (lines 53-97,
112-121). Cropping and composing are the data pipeline's business, not this module's. ``in_chans`` 2 (u, v) works.

Deviation owned by the data pipeline: the release indexes the flow image's ROWS by the landmark's x and its COLUMNS by
its y (main_HTNet.py 112-121: the first index of each 14 x 14 slice is x +- 7, the second y +- 7, for MTCNN's (x, y)
points). With MTCNN's point order (left eye, right eye, nose, left mouth corner, right mouth corner) and a roughly
frontal face (e.g. the fallback points, lines 78-82), that transposed crop lands its blocks near (left eye, left
mouth corner, right eye, right mouth corner): the names the code gives them (l_eye, l_lips, r_eye, r_lips). memix's
pipeline crops at each named point (rows by y), so its blocks are the regions the release's names describe, not the
release's exact pixels.

Manifold mixing: ``stages`` = [patch embedding, level 2 (transformers + aggregate), level 1, level 0]; ``head`` = LN,
mean, linear. ``manifold.block`` 0 mixes the input, 1 the embedded map, 2 and 3 the maps entering levels 1 and 0
(larger values are clipped to 3). TransMix and MEMix do not apply (refused by the registry): HTNet has no CLS token,
and at the release's sizes each block attends over a single token, so there is no attention over regions to weight
a label by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from memix.mixing.base import ManifoldPlan
from memix.models.arch.hierarchy import ChannelNorm, PatchEmbed, level_key_from_release, make_levels
from memix.models.staged import run_stages

INPUTS = "regions"
YEAR = 2023
TYPE = "Transformer"
PAPER = (
    "Zhifeng Wang, Kaihao Zhang, Wenhan Luo, Ramesh Sankaranarayana: HTNet for micro-expression recognition. "
    "arXiv 2307.14637 (2023); Neurocomputing 602 (2024) 128196"
)

RELEASED = {
    "repo": "wangzhifengharrison/HTNet",
    "path": "Model.py",
    "commit": "91cf4bda0a2db50d638d46c04c5d7cf3b602d446",
    "trainable_params": 139_582_982,
    "num_classes": 3,
    "note": (
        "Sum of numel over the requires_grad parameters of the release's Model.py HTNet(image_size=28, patch_size=7, "
        "dim=256, heads=3, num_hierarchies=3, block_repeats=(2, 2, 10), num_classes=3), the model main_HTNet.py "
        "222-231 trains (instantiated outside this repository with einops installed); HTNet(3) here has the same "
        "count, and with the release's weights copied in (convert_released) gives its logits."
    ),
}

RECIPE = {
    "optimizer": "adam",
    "lr": 5e-5,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 0.0,
    "epochs": 800,
    "batch_size": 256,
    "shuffle": "none (DataLoader default)",
    "schedule": "constant",
    "loss": "cross-entropy",
    "input_size": 28,
    "input": (
        "u, v, optical strain of the onset->apex flow at 28 x 28 (the release's STSNet_whole_norm_u_v_os images: "
        "normalised to 0..255 PNGs), four 14 x 14 blocks around the eyes and mouth corners"
    ),
    "landmarks": (
        "five MTCNN points (facenet_pytorch) on the apex face resized to 28 x 28, clamped to [7, 21] then truncated "
        "to int (main_HTNet.py 53-97); a fixed fallback when MTCNN finds no face"
    ),
    "protocol": "LOSO on the MEGC 2019 composite (68 subjects, 3 classes)",
    "selection": (
        "test-set selection (main_HTNet.py 293-301): per test subject every epoch is evaluated (no early stop) and "
        "`best_accuracy_for_each_subject <= val_acc`, starting from 0, keeps the predictions of the LATEST epoch among "
        "those with the highest test accuracy; UF1 / UAR over the pooled kept predictions (recognition_evaluation, "
        "one class against the rest per class, lines 24-51)"
    ),
    "sources": {
        "optimizer": "main_HTNet.py 240: torch.optim.Adam over all parameters, given only the learning rate",
        "lr": "main_HTNet.py 162",
        "betas": "torch defaults (main_HTNet.py 240 passes only lr)",
        "eps": "torch default (main_HTNet.py 240)",
        "weight_decay": "torch default 0 (main_HTNet.py 240)",
        "epochs": "main_HTNet.py 164 (loop at 253)",
        "batch_size": "main_HTNet.py 163 (DataLoader at 244, 248)",
        "shuffle": "main_HTNet.py 244: the training DataLoader gets only the batch size (shuffle defaults to False)",
        "schedule": "main_HTNet.py 161-301: no scheduler",
        "loss": "main_HTNet.py 171: torch cross-entropy, default reduction",
        "input_size": "main_HTNet.py 222-224 image_size=28, patch_size=7; blocks composed at 202-204",
        "input": "main_HTNet.py 104-121 (crops of ./datasets/STSNet_whole_norm_u_v_os read by cv2: BGR order, "
        "0..255, no further normalisation, 242)",
        "landmarks": "main_HTNet.py 53-97 (MTCNN at 72-73, fallback 76-82, clamp 86-91, int 92)",
        "protocol": "main_HTNet.py 184-189: one test subject per folder of the release's datasets/three_norm_u_v_os "
        "(68 folders, 442 test images: 250 negative, 109 positive, 83 surprise); README",
        "selection": "main_HTNet.py 250-301 (kept predictions), 314-316 (pooled UF1 / UAR), 24-51",
    },
}

PUBLISHED = {
    "acc": None,  # not printed
    "f1": 0.8603,  # UF1
    "uar": 0.8475,
    "dataset": "MEGC 2019 composite (CASME II + SAMM + SMIC-HS, 442 clips, 68 subjects)",
    "classes": 3,
    "metric": "UF1 / UAR",
    "selection": "test-set selection: per subject the latest best-accuracy epoch of 800 (main_HTNet.py 293-301)",
    "source": "HTNet README image images/state_of_art.png (github wangzhifengharrison/HTNet at 91cf4bd), row HTNet, "
    "column Full",
    "per_source": {
        "casme2": {"uf1": 0.9532, "uar": 0.9516},
        "samm": {"uf1": 0.8131, "uar": 0.8124},
        "smic": {"uf1": 0.8049, "uar": 0.7905},
    },
}


class Head(nn.Module):
    """Classifier: channel LN, mean over the remaining positions, linear."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = ChannelNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x).mean(dim=(2, 3)))


class HTNet(nn.Module):
    """HTNet on (B, in_chans, img_size, img_size) composed region images; logits (B, num_classes).

    Defaults are the release's training configuration (main_HTNet.py 222-231). ``block_repeats`` is the transformer
    depth per level from the finest (most blocks) to the coarsest; an int repeats for every level.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 3,
        img_size: int = 28,
        patch_size: int = 7,
        dim: int = 256,
        heads: int = 3,
        num_hierarchies: int = 3,
        block_repeats: int | Sequence[int] = (2, 2, 10),
        mlp_mult: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 1 or in_chans < 1 or dim < 1 or heads < 1 or mlp_mult < 1 or num_hierarchies < 1:
            raise ValueError("num_classes, in_chans, dim, heads, mlp_mult and num_hierarchies must be >= 1")
        if patch_size < 1 or img_size < patch_size or img_size % patch_size:
            raise ValueError(f"img_size {img_size} must be a positive multiple of patch_size {patch_size}")
        fmap = img_size // patch_size
        top = 2 ** (num_hierarchies - 1)
        if fmap % top:
            raise ValueError(
                f"the {fmap} x {fmap} patch map (img_size / patch_size) must be divisible by 2**(num_hierarchies - 1) "
                f"= {top}"
            )
        if heads > dim:
            raise ValueError(f"heads ({heads}) must not exceed dim ({dim}): dim_head = dim // heads")
        repeats = (block_repeats,) * num_hierarchies if isinstance(block_repeats, int) else tuple(block_repeats)
        if len(repeats) != num_hierarchies or min(repeats) < 1:
            raise ValueError(f"block_repeats must give {num_hierarchies} depths >= 1, got {block_repeats!r}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.patch_size = patch_size
        # stages: the patch embedding, then one stage per level (run_stages mixes between them)
        self.stages = nn.ModuleList(
            [PatchEmbed(in_chans, patch_size, dim), *make_levels(fmap, dim, heads, repeats, mlp_mult, dropout)]
        )
        self.head = Head(dim * top, num_classes)

    def forward(self, x: torch.Tensor, manifold: ManifoldPlan | None = None) -> torch.Tensor:
        """Logits; with ``manifold`` the tensor entering stage ``min(block, 3)`` becomes lam*h + (1-lam)*h[perm]."""
        want = (self.in_chans, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"region batch has shape {tuple(x.shape)}, HTNet expects (B, {want[0]}, {want[1]}, {want[2]})"
            )
        return self.head(run_stages(self.stages, x, manifold))


_TOP_KEYS = (
    (r"to_patch_embedding\.1\.(weight|bias)", r"stages.0.\1"),
    (r"mlp_head\.0\.g", "head.norm.weight"),
    (r"mlp_head\.0\.b", "head.norm.bias"),
    (r"mlp_head\.2\.(weight|bias)", r"head.fc.\1"),
)


def convert_released(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the release's ``HTNet`` (Model.py) renamed to this module's keys, so the per-subject weights
    its script saves load here with ``load_state_dict(convert_released(sd))``."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        level = re.fullmatch(r"layers\.(\d+)\.(.+)", key)
        if level:
            rest = level_key_from_release(level[2])
            new = None if rest is None else f"stages.{int(level[1]) + 1}.{rest}"
        else:
            new = next((re.sub(pat, rep, key) for pat, rep in _TOP_KEYS if re.fullmatch(pat, key)), None)
        if new is None:
            raise KeyError(f"unexpected key in a released HTNet state dict: {key!r}")
        out[new] = value
    return out
