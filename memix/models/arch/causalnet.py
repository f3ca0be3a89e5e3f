"""CausalNet: two hierarchical branches (optical flow, direction maps), a masked cross transformer and a causal
attention block over 4 tokens on a 2 x 2 grid for the onset-apex and apex-offset motion.

Paper: Z. Zhang, W. Tang, H. Chen, "Rethinking Key-frame-based Micro-expression Recognition: A Robust and Accurate
Framework Against Key-frame Errors", ICCV 2025, pp. 12274-12283 (arXiv:2508.06640). Release read (MIT licence):
github.com/tony19980810/CausalNet at commit 7bdf163face030eeae4358fc7638cf538305acce: ``Models.py`` (class
``CausalNet`` and its parts), ``main_train.py`` (the run behind the README's figures), ``main_train_for_parameter_
tuning.py`` (the search it was picked from), ``calculate_all_results.py`` and ``README.md``. The layers here are
written from those definitions; no code was copied.

Inputs (``INPUTS = "sequence"``): ``x`` is (B, in_chans, S, S), four images stacked on channels in this order
(``main_train_for_parameter_tuning.py`` lines 206-209): onset->apex optical flow, apex->offset optical flow,
onset->apex direction map, apex->offset direction map; each image has ``in_chans // 4`` channels (3 in the release:
cv2-read BGR, 0..255, not normalised) and is, in the release, a 28 x 28 composite of four 14 x 14 crops (HTNet's
layout). (B, 4, in_chans // 4, S, S), the release's own layout, is accepted too.

What the released forward computes (widths for dim D = 256, heads H = 3, L = 3 levels, image 28, patch 7):

- Branch: HTNet's hierarchy (:class:`memix.models.arch.hierarchy.Hierarchy`, whose docstring gives its layers): 7 x 7
  patches to a 4 x 4 map of width D, then per level l = 0..L-1 (width D*2^l, heads H*2^l, ``block_repeats[l]``
  layers) the map cut into 2^(L-1-l) x 2^(L-1-l) blocks; head width D // H, so 3*255 qkv channels and a 255 -> 256
  output conv at D = 256, H = 3. The map halves between levels, the block grid too, so EVERY block is a single
  token: the branch's attention weights are all 1 (its output is the projected value) and each position vector is
  one scalar.
  Images 0 and 1 share one branch, images 2 and 3 a second one. Each gives (B, 4D, 1, 1), reshaped to (B, D, 2, 2)
  (channel c*4 + t -> channel c of token t, the 2 x 2 grid row-major): 4 tokens of width D. They are not image
  regions: each is every 4th channel of the branch's single 1 x 1 output (which has seen the whole composite),
  so the grid's "positions" and the masks below act on interleaved channel groups.
- Cross transformer on the two direction-map sequences (a, b): per layer one nn.LayerNorm, one grid attention and
  one feed-forward (Linear, GELU, Linear; no norm before it), all shared by both streams:
  a += attn(norm(a), context b);  b += attn(norm(b), context the UPDATED a);  a += ff(a);  b += ff(b).
  Grid attention (heads 8, scale D**-0.5 of the full width, not of the head width): with M = 1 where the two tokens'
  grid distance is <= 1 and P[i, j] = -(j + 1) * gamma where it is > 1 (the diagonal pairs 0-3 and 1-2),
  weights = softmax(q k^T * scale * M + P) * M: diagonal weights are 0, but exp(P) stays in the denominator, so a
  row sums to less than 1.
- Fusion: flow tokens + cross outputs: u = flow(onset->apex) + a, w = flow(apex->offset) + b, each (B, 4, D).
- Causal attention block (one layer, heads 8): one nn.LayerNorm, one spatial-temporal attention (spatial: grid
  attention as above with scale (D // 8)**-0.5 on each stream; temporal: per token and head, the second stream's
  query attends to the pair (first stream's key/value, its own key/value), softmax over the pair), one feed-forward
  (no pre-norm), one causal relation mining, all shared between a forward pass on (u, w) and a backward pass on
  (w, u). A pass on (p, q): p, q = norm(p), norm(q) (the normalised values ARE the residual stream from here on);
  p += spatial(p); q += spatial(q); q += temporal(p, q); p += ff(p); q += ff(q). Mining on the passes' second
  outputs (q_f, q_b): attention with query from q_f, key from q_b, value from q_f + q_b, then
  proj(attention + q_f + q_b). Output: [mining (4 tokens), p_f, p_b] -> (B, 12 D).
- Head: Linear(12 D, 2048) -> Linear(2048, num_classes), with no activation between (``head_hidden``).

Choices and release quirks reproduced (``main_train.py`` lines 257-267 build the model; defaults = that run):

- Cross transformer depth: the release passes ``depth``, the loop variable left over from building the levels, i.e.
  ``block_repeats[-1]`` (9 layers for (3, 3, 9)); reproduced.
- Fused width: hard-coded 256 (cross transformer, causal block) and ``1536 * 2`` (head) in the release; both equal
  the branch output width / 4 (= D at L = 3) and 12 x that, which is what this module uses, so ``dim`` scales.
- Heads of the cross transformer, the spatial-temporal attention and the mining: 8 each in the release
  (``cross_heads``); the causal block's depth is 1 there and fixed here.
- gamma: ``main_train.py`` runs 0.5; ``Models.py``'s constructor default 0.4 was not the run.
- Dropout (0 in the release) sits where the release puts it: on the branch's attention weights and after each
  output projection and feed-forward layer.
- Size: the reshape to a 2 x 2 grid needs the branch to end at 1 x 1, i.e. img_size = patch_size * 2^(L-1).

Trainable parameters (3 classes, the defaults): 276,590,089, equal to the release's ``CausalNet`` built with
``main_train.py``'s arguments; the two branches hold 2 x 130,935,811, the cross transformer 7,103,232, the causal
block 1,315,584, the head 6,299,651. ``state_dict_from_release`` maps a release state dict onto this module; checked
against the release code with its weights copied (a scratch script outside this repository), the logits agreed
within 8.2e-7 at the default configuration (float32, the release's initialisation, logits up to 0.71) and within
2.6e-9 in float64 with every weight, norm and position vector randomised (logits up to 177).

Manifold mixing: a single tensor flows only at the input and at the fused tokens. ``stages[0]`` is the two branches,
the cross transformer and the fusion (input (B, in_chans, S, S) -> (B, 2, 4, D), u and w stacked), ``stages[1]``
the causal attention block + flatten (-> (B, 12 D)), ``head`` the two linears. ``manifold.block`` 0 mixes the input
(all four images alike), 1 (or more, clipped) mixes the fused tokens u and w.

TransMix and MEMix are not defined for CausalNet: it has no CLS token, its branch attention is over single tokens,
and its only real attention is over the 4 tokens of a 2 x 2 grid at the end (channel groups of a 1 x 1 feature);
none of it is over the 14 x 14 flow patches whose attention MEMix weights labels by.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from memix.mixing.base import ManifoldPlan
from memix.models.arch.grid_attention import GRID, CausalBlock, CrossLayer
from memix.models.arch.hierarchy import Hierarchy, level_key_from_release
from memix.models.staged import run_stages

INPUTS = "sequence"
YEAR = 2025
TYPE = "Transformer"
PAPER = (
    "Z. Zhang, W. Tang, H. Chen: Rethinking Key-frame-based Micro-expression Recognition: A Robust and Accurate "
    "Framework Against Key-frame Errors. ICCV 2025, pages 12274-12283 (arXiv:2508.06640)"
)
RELEASED = {
    "repo": "tony19980810/CausalNet",
    "path": "Models.py",
    "commit": "7bdf163face030eeae4358fc7638cf538305acce",
    "trainable_params": 276_590_089,
    "num_classes": 3,
    "note": (
        "Counted by instantiating the release's CausalNet (Models.py) with main_train.py's arguments (lines 257-267: "
        "image_size 28, patch_size 7, dim 256, heads 3, num_hierarchies 3, block_repeats (3, 3, 9), num_classes 3, "
        "gamma 0.5; mlp_mult 4, dropout 0 by default) and summing requires_grad parameters (all of them registered "
        "and all get a gradient): branches 2 x 130,935,811, cross transformer (9 layers, the leaked depth) "
        "7,103,232, causal attention block 1,315,584, head 6,299,651. The masks are buffers."
    ),
}
RECIPE = {
    "optimizer": "adam",
    "lr": 5e-5,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 0.0,
    "epochs": 200,
    "batch_size": 1024,
    "schedule": "constant",
    "shuffle": "none",
    "seed": 2025,
    "loss": "cross-entropy",
    "input_size": 28,
    "input": (
        "four 28 x 28 BGR images per clip, 0..255, not normalised: onset->apex optical flow, apex->offset optical "
        "flow (the u, v, optical-strain images), onset->apex and apex->offset direction maps. A direction map is per "
        "pixel the hue of the angle atan2(v, u) of the 0..255-normalised u and v images, rendered HSV->BGR with full "
        "saturation and value; the release ships these images (datasets/STSNet_whole_norm_u_v_os, '<clip> .png' and "
        "'_1', '_2', '_3') but not the code that made them; memix matched its shipped images: hue = angle / 2 in "
        "OpenCV units reproduces them within 1.4 grey levels on average. Each image is a composite of four 14 x 14 "
        "crops, [[crop 0, crop 1], [crop 3, crop 4]] (crop 2, the nose, is unused), as HTNet"
    ),
    "landmarks": (
        "main_train.py lines 58-100: MTCNN is NOT run: every clip uses the fixed fallback points [[9.53, 11.06], "
        "[21.40, 10.92], [15.38, 17.38], [10.26, 22.12], [20.58, 22.26]] (clamped to [7, 21], truncated to int), the "
        "same crops for all four images; lines 114-123 index rows by a point's first coordinate, so the crops are "
        "rows/columns [2:16, 4:18], [14:28, 3:17] (top) and [3:17, 14:28], [13:27, 14:28] (bottom)"
    ),
    "protocol": "LOSO over the MEGC 2019 composite (68 subjects, 442 clips, 3 classes); one fresh model per subject",
    "selection": (
        "test-set selection: main_train.py lines 346-363: per subject the EARLIEST epoch with the highest test "
        "accuracy (`best_accuracy_for_each_subject < val_acc` from 0), training stops at the first epoch with "
        "100 % test accuracy (else after epoch 200, lines 364-370); the chosen epoch's predictions (best_matrix) "
        "are written and calculate_all_results.py (lines 36-71) pools them over subjects into UF1, UAR and Acc; a "
        "subject never right in any epoch writes an EMPTY matrix and so drops out of the pooled figures entirely"
    ),
    "tuning": (
        "main_train_for_parameter_tuning.py lines 153-162 try block_repeats (l1 in 3, 2; l2 in 3, 2; l3 in 7..10; "
        "skipping (2, 2, *)) and gamma in (0.3, 0.4, 0.5) on the SAME LOSO folds, with the same test-set selection, "
        "and README.md lines 38-43 say to use it 'to find the optimal parameters': test-set tuning; main_train.py "
        "runs (3, 3, 9) and gamma 0.5"
    ),
    "sources": {
        "optimizer": "main_train.py line 277 torch.optim.Adam(model.parameters(), lr=learning_rate); torch defaults",
        "lr": "main_train.py line 141 (0.00005)",
        "betas": "torch.optim.Adam defaults (main_train.py line 277)",
        "eps": "torch.optim.Adam defaults (main_train.py line 277)",
        "weight_decay": "torch.optim.Adam default 0 (main_train.py line 277)",
        "epochs": "main_train.py line 143 (200), loop line 297",
        "batch_size": "main_train.py line 142 (256*4); larger than any training fold, so one full-batch step per epoch",
        "schedule": "main_train.py: no scheduler",
        "shuffle": "main_train.py line 286 DataLoader(dataset_train, batch_size=batch_size): shuffle off",
        "seed": "main_train.py lines 135-139 (torch, cuda, numpy, random seeded once, before all subjects)",
        "loss": "main_train.py line 150 nn.CrossEntropyLoss()",
        "input_size": "main_train.py line 258 image_size=28; composites lines 184-210 (train), 224-252 (test)",
        "input": "main_train_for_parameter_tuning.py lines 206-209 (the four images); main_train.py line 112 "
        "cv2.imread, line 282 permute to (B, 4, 3, 28, 28)",
        "landmarks": "main_train.py lines 58-100 and 103-130",
        "protocol": "main_train.py lines 163-168 (one test subject per folder), 257-267 (model built per subject)",
        "selection": "main_train.py lines 346-370; calculate_all_results.py lines 36-71",
        "tuning": "main_train_for_parameter_tuning.py lines 148-162 and 287-297; README.md lines 36-43",
    },
}
PUBLISHED = {
    "f1": 0.8976,  # UF1
    "uar": 0.9020,
    "acc": 91.18,
    "dataset": "MEGC 2019 composite (CASME II + SAMM + SMIC-HS)",
    "classes": 3,
    "metric": "UF1 / UAR / Acc",
    "selection": "test-set selection (earliest best-accuracy epoch per subject, stop at 100 %) after test-set "
    "hyper-parameter tuning",
    "source": "CausalNet README.md (github tony19980810/CausalNet at 7bdf163), results table line 63 (the released "
    "weights' figures)",
    "per_source": {
        "casme2": {"uf1": 0.9811, "uar": 0.9858, "acc": 98.62},
        "samm": {"uf1": 0.8780, "uar": 0.8582, "acc": 91.73},
        "smic": {"uf1": 0.8390, "uar": 0.8452, "acc": 84.15},
    },
}

IMAGES = 4  # images per clip: flow onset->apex, flow apex->offset, direction onset->apex, direction apex->offset


class _Encoder(nn.Module):
    """Stage 0: four images (B, 4*C, S, S) -> fused tokens (B, 2, 4, D'): (flow 0 + cross a, flow 1 + cross b)."""

    def __init__(
        self, image_chans: int, patch_size: int, fmap: int, dim: int, heads: int, block_repeats: Sequence[int],
        mlp_mult: int, gamma: float, cross_heads: int, width: int, dropout: float,
    ) -> None:
        super().__init__()
        self.image_chans = image_chans
        self.width = width
        self.branches = nn.ModuleList(
            Hierarchy(image_chans, patch_size, fmap, dim, heads, block_repeats, mlp_mult, dropout) for _ in range(2)
        )
        self.cross = nn.ModuleList(
            CrossLayer(width, cross_heads, mlp_mult, gamma, dropout) for _ in range(block_repeats[-1])
        )

    def _tokens(self, branch: nn.Module, pair: torch.Tensor) -> torch.Tensor:
        """Two images (B, 2, C, S, S) through one branch -> (B, 2, 4, D'): channel c*4 + t is token t's channel c."""
        b = pair.shape[0]
        out = branch(pair.reshape(b * 2, *pair.shape[2:]))
        return out.reshape(b, 2, self.width, GRID * GRID).transpose(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, s, _ = x.shape
        images = x.reshape(b, IMAGES, self.image_chans, s, s)
        flow = self._tokens(self.branches[0], images[:, :2])
        direction = self._tokens(self.branches[1], images[:, 2:])
        a, c = direction[:, 0], direction[:, 1]
        for layer in self.cross:
            a, c = layer(a, c)
        return flow + torch.stack([a, c], dim=1)


class CausalNet(nn.Module):
    """CausalNet on four images stacked on channels (B, in_chans, S, S); logits (B, num_classes).

    Defaults are ``main_train.py``'s run (lines 257-267). ``block_repeats`` gives the blocks per level (its last entry
    is also the cross transformer's depth, as in the release), ``cross_heads`` the heads of every attention over the
    fused tokens, ``head_hidden`` the width between the head's two linears.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 12,
        img_size: int = 28,
        patch_size: int = 7,
        dim: int = 256,
        heads: int = 3,
        num_hierarchies: int = 3,
        block_repeats: Sequence[int] | int = (3, 3, 9),
        mlp_mult: int = 4,
        gamma: float = 0.5,
        cross_heads: int = 8,
        head_hidden: int = 2048,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        repeats = (block_repeats,) * num_hierarchies if isinstance(block_repeats, int) else tuple(block_repeats)
        width = _check(num_classes, in_chans, img_size, patch_size, dim, heads, num_hierarchies, repeats, mlp_mult,
                       cross_heads, head_hidden, dropout)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.width = width
        encoder = _Encoder(in_chans // IMAGES, patch_size, img_size // patch_size, dim, heads, repeats, mlp_mult,
                           gamma, cross_heads, width, dropout)
        self.stages = nn.ModuleList([encoder, CausalBlock(width, cross_heads, mlp_mult, gamma, dropout)])
        self.head = nn.Sequential(nn.Linear(3 * GRID * GRID * width, head_hidden), nn.Linear(head_hidden, num_classes))

    def forward(self, x: torch.Tensor, manifold: ManifoldPlan | None = None) -> torch.Tensor:
        """Logits; with ``manifold`` the tensor entering stage ``min(block, 1)`` becomes lam*h + (1-lam)*h[perm]."""
        s, c = self.img_size, self.in_chans
        if x.ndim == 5 and tuple(x.shape[1:]) == (IMAGES, c // IMAGES, s, s):
            x = x.reshape(x.shape[0], c, s, s)
        if x.ndim != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(
                f"input has shape {tuple(x.shape)}, CausalNet expects (B, {c}, {s}, {s}) (four images of {c // IMAGES} "
                f"channels stacked) or (B, {IMAGES}, {c // IMAGES}, {s}, {s})"
            )
        return self.head(run_stages(self.stages, x, manifold))


def _check(
    num_classes: int, in_chans: int, img_size: int, patch_size: int, dim: int, heads: int, levels: int,
    repeats: tuple[int, ...], mlp_mult: int, cross_heads: int, head_hidden: int, dropout: float,
) -> int:
    """Validate the constructor's arguments; the width of the fused tokens (branch output / 4)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if in_chans < IMAGES or in_chans % IMAGES:
        raise ValueError(f"in_chans must be a positive multiple of {IMAGES} (four images stacked), got {in_chans}")
    if levels < 1 or len(repeats) != levels or min(repeats) < 1:
        raise ValueError(f"block_repeats must give >= 1 block for each of the {levels} levels, got {repeats}")
    if patch_size < 1 or img_size % patch_size:
        raise ValueError(f"img_size {img_size} must be a multiple of patch_size {patch_size}")
    if img_size // patch_size != 2 ** (levels - 1):
        raise ValueError(
            f"img_size / patch_size must be 2^(num_hierarchies - 1) = {2 ** (levels - 1)} so that the branches end "
            f"at 1 x 1 (their output is cut into a 2 x 2 token grid), got {img_size} / {patch_size}"
        )
    if heads < 1 or dim < heads:
        raise ValueError(f"dim ({dim}) must be >= heads ({heads}) >= 1")
    if dim * 2 ** (levels - 1) % (GRID * GRID):
        raise ValueError(f"the branch output width dim * 2^(num_hierarchies - 1) must be divisible by 4, got {dim}")
    width = dim * 2 ** (levels - 1) // (GRID * GRID)
    if cross_heads < 1 or width % cross_heads:
        raise ValueError(f"the fused width {width} (= dim at 3 levels) must be divisible by cross_heads {cross_heads}")
    if mlp_mult < 1 or head_hidden < 1:
        raise ValueError(f"mlp_mult and head_hidden must be >= 1, got {mlp_mult} and {head_hidden}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return width


# --- release state dicts ---

_RELEASE_KEYS: tuple[tuple[str, str], ...] = (  # the branches' levels: hierarchy.level_key_from_release
    (r"to_patch_embedding\.1\.(weight|bias)", r"stages.0.branches.0.embed.\1"),
    (r"to_patch_embedding1\.1\.(weight|bias)", r"stages.0.branches.1.embed.\1"),
    (r"CrossAttention\.layers\.(\d+)\.0\.(weight|bias)", r"stages.0.cross.\1.norm.\2"),
    (r"CrossAttention\.layers\.(\d+)\.1\.to_(q|kv)\.(weight|bias)", r"stages.0.cross.\1.attn.\2.\3"),
    (r"CrossAttention\.layers\.(\d+)\.1\.to_out\.0\.(weight|bias)", r"stages.0.cross.\1.attn.proj.\2"),
    (r"CrossAttention\.layers\.(\d+)\.2\.0\.(weight|bias)", r"stages.0.cross.\1.ff.fc1.\2"),
    (r"CrossAttention\.layers\.(\d+)\.2\.3\.(weight|bias)", r"stages.0.cross.\1.ff.fc2.\2"),
    (r"cab\.layers\.0\.0\.(weight|bias)", r"stages.1.norm.\1"),
    (r"cab\.layers\.0\.1\.to_(q|kv)\.(weight|bias)", r"stages.1.attn.spatial.\1.\2"),
    (r"cab\.layers\.0\.1\.to_out\.0\.(weight|bias)", r"stages.1.attn.spatial.proj.\1"),
    (r"cab\.layers\.0\.1\.temp_to_(q|kv)\.(weight|bias)", r"stages.1.attn.temporal_\1.\2"),
    (r"cab\.layers\.0\.1\.temp_to_out\.0\.(weight|bias)", r"stages.1.attn.temporal_proj.\1"),
    (r"cab\.layers\.0\.2\.0\.(weight|bias)", r"stages.1.ff.fc1.\1"),
    (r"cab\.layers\.0\.2\.3\.(weight|bias)", r"stages.1.ff.fc2.\1"),
    (r"cab\.layers\.0\.3\.to_(q|k|v)\.(weight|bias)", r"stages.1.mining.\1.\2"),
    (r"cab\.layers\.0\.3\.to_out\.0\.(weight|bias)", r"stages.1.mining.proj.\1"),
    (r"mlp_head\.(0|1)\.(weight|bias)", r"head.\1.\2"),
)


def state_dict_from_release(release: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the release's ``CausalNet`` (Models.py) renamed for this module.

    The attention masks (``M_mask``, ``P_matrix``) are dropped: here they are derived from ``gamma``. Unknown keys
    raise KeyError, so a state dict of another network is not silently half-loaded.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in release.items():
        if key.endswith((".M_mask", ".P_matrix")):
            continue
        short = key.removeprefix("module.")
        level = re.fullmatch(r"layers(1?)\.(\d+)\.(.+)", short)  # layers.: branch 0, layers1.: branch 1
        if level:
            rest = level_key_from_release(level[3])
            new = None if rest is None else f"stages.0.branches.{len(level[1])}.levels.{level[2]}.{rest}"
        else:
            new = next((m.expand(t) for p, t in _RELEASE_KEYS if (m := re.fullmatch(p, short))), None)
        if new is None:
            raise KeyError(f"unexpected key in a released CausalNet state dict: {key!r}")
        out[new] = value
    return out
