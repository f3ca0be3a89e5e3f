"""MMNet: a two-branch micro-expression network (motion pattern from apex - onset, face position from the onset).

Paper: Hanting Li, Mingzhe Sui, Zhaoqing Zhu, Feng Zhao, "MMNet: Muscle motion-guided network for micro-expression
recognition", IJCAI 2022 (arXiv 2201.05297). Release read: github.com/muse1998/MMNet at commit
7b62fa9d56f4356c0d1d8557aa0042748693bc06: ``CASME2_5.py`` (class ``MMNet`` and the training recipe),
``CA_block.py`` (``CABlock``, ``ResNet``, ``resnet18_pos_attention``) and ``PC_module.py``
(``VisionTransformer_POS``). ``CASME2_3.py`` was read for the 3-class variant (see below). The layers here are
written from those definitions; no code was copied.

What the released forward computes (onset face ``x1``, apex face ``x5``, both 3x224x224, ImageNet-normalised RGB):

- main branch: ``act = apex - onset`` -> conv 3x3/s2 (3->180, no bias) + BN + ReLU (112x112) -> ``main_branch``:
  conv 3x3/s1 (180->128) + BN + ReLU, then four continuous-attention (CA) blocks (one per stage, ResNet-18 layout
  with widths 128, 128, 256, 512 and strides 1, 2, 2, 2 -> 512x14x14). A CA block is a residual block whose second
  conv is 1x1 (conv3x3-BN-ReLU-conv1x1-BN, + shortcut, ReLU), followed by a spatial attention map
  sigmoid(BN(conv1x1([mean_c, max_c]))) (2->1 channels) that is multiplied by the previous block's map after a
  3x3/s2 max-pool (the "continuous" prior) and then multiplies the block's output.
- position-calibration (PC) branch: the onset frame resized to 14x14 (torchvision ``Resize``, bilinear), a 1x1
  patch embedding (3->512, with bias), a learned position embedding (196x512), two pre-norm transformer blocks
  (4 heads, MLP ratio 4, qkv bias, GELU, LayerNorm eps 1e-6), a final LayerNorm -> 512x14x14.
- fusion: the two 512x14x14 maps are added, flattened (100352) and fed to one Linear layer (with bias) -> logits.
  The fc width is hard-coded to 5 in the release (``CA_block.py``), for both scripts; here it is ``num_classes``.

Inputs (``INPUTS = "faces"``): ``x`` is (B, 6, S, S) = onset RGB (channels 0-2) then apex RGB (channels 3-5),
aligned face crops normalised with the ImageNet mean/std as in the release. The release's data set also loads seven
more frames (three between onset and apex, four after the apex) but its forward uses only the onset and the apex.
``in_chans`` may be any even number (2 * channels per frame, e.g. 2 for grey); the release uses RGB (6). In the
pipeline it reads the flow set's aligned GREY onset and apex faces at ``flow.size`` (``in_chans`` 2; the faces
stage crops grey, :func:`memix.io.views.faces_view`), normalised per LOSO fold like flow, resized to ``img_size``
by :class:`memix.models.NetModel`.

Image size: the release uses 224 (-> 14x14 maps). Here ``img_size`` must be a multiple of 16 and the PC branch
works on a (S/16)x(S/16) grid so that both branches meet; at 224 this is the release's 14x14 / 196 tokens.

Manifold mixing: the two branches run in parallel and the main branch also carries the CA attention map from block
to block, so the only places where a single tensor flows are the input and the fused map. Hence two stages:
stage 0 = the whole two-branch body (input (B, 6, S, S) -> fused map (B, 512, S/16, S/16)), stage 1 = identity on
the fused map (a mixing point only, no parameters); ``head`` = flatten + the Linear classifier. ``manifold.block``
0 mixes the input frames (both onset and apex, so the difference and the PC input are mixed alike), 1 (or any
larger value) mixes the fused map.

Parameter counts (release, 5 classes, counted by instantiating the release's ``MMNet`` from ``CASME2_5.py`` at this
commit and backpropagating one forward pass): 9,970,947 trainable parameters are registered, 9,438,841 receive a
gradient. The 532,106 unused ones are ``MMNet.pos`` (1x1 conv 3->512 + BN, 2,560), ``MMNet.head`` (Linear
12544->38, 476,672), ``MMNet.timeembed`` (49,284), and in the PC module ``cls_token`` (512), ``head`` (2,565) and
``to_Mask`` (513). This module builds only the used layers: 9,438,841 at 5 classes.

Choices where the release is silent or ambiguous:

- Resize of the onset to the PC grid: the release calls ``torchvision.transforms.Resize([14, 14])`` on a tensor,
  whose anti-aliasing depends on the torchvision version (off for tensors before 0.17, on from 0.17). The release
  dates from 2022, so the default here is plain bilinear (``pos_antialias=False``, align_corners=False).
- ``pretrained``: the release's main branch is ``resnet18_pos_attention(pretrained=False)`` (its own kaiming
  init); the train script's ``--pretrained`` path refers to an undefined ``res18`` and is off by default, so the
  released recipe trains from scratch. Nothing is loaded here either (no downloads); initialisation follows the
  release: kaiming-normal (fan_out) convs and BN 1/0 in the main branch, PyTorch defaults for the first conv and
  the patch embedding, truncated normal (std 0.02) for the transformer's Linear layers and position embedding.
- Dropout: the release registers Dropout layers (p=0.5, p=0.1) that its forward never calls; none is used here.
  ``drop_path_rate`` (0 in the 5-class script) is available as an option.
- The 3-class script (``CASME2_3.py``) changes the PC module to depth 3, MLP ratio 2, drop-path 0.3 (available via
  ``pos_depth``, ``pos_mlp_ratio``, ``drop_path_rate``), but it also sets ``groups=2`` on the first conv with 3
  input channels, which PyTorch rejects, so that script cannot build as released; the defaults follow the 5-class
  script.

What could not be matched: nothing in the forward as far as known; the release's unused modules are left out on
purpose (their parameters never change the output). ``state_dict_from_release`` maps a release state dict onto
this module (when checked here against the release code, the logits agreed to float32 rounding).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from memix.mixing.base import ManifoldPlan
from memix.models.staged import run_stages

INPUTS = "faces"
YEAR = 2022
TYPE = "CNN + Transformer"
PAPER = (
    "Hanting Li, Mingzhe Sui, Zhaoqing Zhu, Feng Zhao, 'MMNet: Muscle motion-guided network for micro-expression "
    "recognition', IJCAI 2022"
)
RELEASED = {
    "repo": "muse1998/MMNet",
    "path": "CASME2_5.py (MMNet), CA_block.py (resnet18_pos_attention), PC_module.py (VisionTransformer_POS)",
    "commit": "7b62fa9d56f4356c0d1d8557aa0042748693bc06",
    "trainable_params": 9_438_841,
    "registered_params": 9_970_947,
    "num_classes": 5,
    "note": (
        "Counted by building the release's MMNet (CASME2_5.py, 5 classes, 224x224) and summing the trainable "
        "parameters: 9,970,947 registered; 9,438,841 get a gradient from one forward/backward (the count compared "
        "here). Unused: pos (2,560), head Linear 12544->38 (476,672), timeembed (49,284), vit_pos.cls_token (512), "
        "vit_pos.head (2,565), vit_pos.to_Mask (513). The release's fc width is fixed at 5 in CA_block.py."
    ),
}
RECIPE = {
    "source": "muse1998/MMNet CASME2_5.py run_training() (5-class CASME II); CASME2_3.py noted where it differs",
    "optimizer": "AdamW (the '--optimizer adam' branch builds torch.optim.AdamW)",
    "lr": 8e-4,
    "weight_decay": "0.6 (CASME2_3.py: 0.7)",
    "betas": "PyTorch defaults (0.9, 0.999)",
    "schedule": "ExponentialLR gamma=0.987, stepped after each of the first 50 epochs, constant afterwards",
    "epochs": "74 (range(1, 75)); CASME2_3.py: 99",
    "batch_size": "32 (DataLoader literal; the argparse default 34 is unused); CASME2_3.py: 24",
    "loss": "CrossEntropyLoss",
    "input_size": "224x224 RGB face crops (dataset's 'Cropped' aligned frames), ImageNet mean/std normalisation",
    "frames": (
        "train: onset drawn from [onset, onset + 0.15*(apex-onset)/4], apex from [apex - 0.15*(apex-onset)/4, apex] "
        "(integer frame indices); test: the annotated onset and apex"
    ),
    "augmentation": (
        "train only, same draw for all frames of a clip: RandomHorizontalFlip(0.5), RandomRotation(3), "
        "RandomCrop(224, padding=15); CASME2_3.py: rotation 4, padding 4"
    ),
    "protocol": (
        "LOSO over CASME II subjects; per test subject the best epoch is kept (max correct count, max F1), "
        "then summed over subjects"
    ),
    "selection": (
        "test-set selection, the MEMix release's rule (memix's `oracle`): CASME2_5.py lines 591-597 keep per subject "
        "the correct count of the EARLIEST best-accuracy epoch (`bingo_cnt > max_corr`) and the counts of the "
        "LATEST best-F1 epoch (`AVG_F1 >= max_f1`, both from 0: a subject whose F1 is 0 in every epoch gives its "
        "last epoch); lines 599-610 pool those counts into accuracy and F1 (F1 over the classes present)"
    ),
    "pretrained": "none in effect (main branch built with pretrained=False; --pretrained path unused/broken)",
    "model_options": "PC module depth 2, 4 heads, MLP ratio 4, drop_path 0 (CASME2_3.py: depth 3, ratio 2, 0.3)",
}
PUBLISHED = {
    "acc": 90.22,
    "f1": 0.8391,
    "dataset": "SAMM, as the MEMix README labels its table (line 7)",
    "classes": "3 (per that label)",
    "metric": "Acc (%) / F1 as printed",
    "selection": "not stated where the figure is printed (MMNet's release selects per test subject, CASME2_5.py "
    "lines 591-597: memix's `oracle`)",
    "source": "as printed in the MEMix paper's table; source not found (MEMix README, github Nikki-Gu/MEMix, README.md "
    "at 6fa67c8, line 19): the MMNet release (muse1998/MMNet) has only CASME II scripts, and the MMNet paper's tables "
    "could not be read",
}


class _Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (names as in the release: qkv, proj)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def _drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    if p == 0.0 or not training:
        return x
    keep = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(1 - p)
    return x * keep / (1 - p)


class _Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + mlp(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + _drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + _drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class _PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=1)  # patch size 1 in the release

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class PositionCalibration(nn.Module):
    """PC module: onset frame -> grid x grid resize -> 1x1 patch tokens + position embedding -> transformer -> map."""

    def __init__(
        self,
        in_chans: int,
        grid: int,
        dim: int = 512,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.antialias = antialias
        self.patch_embed = _PatchEmbed(in_chans, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, dim))
        rates = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist() if depth > 0 else []  # meta-safe
        self.blocks = nn.ModuleList(_Block(dim, heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, onset: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(
            onset, size=(self.grid, self.grid), mode="bilinear", align_corners=False, antialias=self.antialias
        )
        tokens = self.patch_embed(small) + self.pos_embed
        for blk in self.blocks:
            tokens = blk(tokens)
        tokens = self.norm(tokens)
        b, n, c = tokens.shape
        return tokens.transpose(1, 2).reshape(b, c, self.grid, self.grid)


class CABlock(nn.Module):
    """Continuous-attention block: residual conv3x3-conv1x1 block gated by a spatial map chained across blocks."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.attn = nn.Sequential(nn.Conv2d(2, 1, 1, bias=False), nn.BatchNorm2d(1), nn.Sigmoid())
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor, prior: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(gated output, this block's attention map (B, 1, H, W) including the prior)."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out = F.relu(out + shortcut)
        stats = torch.cat((out.mean(dim=1, keepdim=True), out.amax(dim=1, keepdim=True)), dim=1)
        attn = self.attn(stats)
        if prior is not None:
            attn = attn * prior
        return out * attn, attn


class MainBranch(nn.Module):
    """Stem conv (180->128) and four CA blocks (ResNet-18 layout, one block per stage); adds the PC map at the end."""

    def __init__(self, in_ch: int = 180) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 128, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(128)
        widths, strides = (128, 128, 256, 512), (1, 2, 2, 2)
        ch = 128
        for i, (w, s) in enumerate(zip(widths, strides, strict=True)):
            # a one-block ModuleList keeps the release's key names (layer1.0.conv1.weight, ...)
            self.add_module(f"layer{i + 1}", nn.ModuleList([CABlock(ch, w, s)]))
            ch = w
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, act: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(act)))
        prior = None
        for i in range(4):
            x, attn = getattr(self, f"layer{i + 1}")[0](x, prior)
            prior = F.max_pool2d(attn, kernel_size=3, stride=2, padding=1)
        return x + pos


class MMNetBody(nn.Module):
    """Stage 0: (B, 2c, S, S) onset|apex -> fused map (B, 512, S/16, S/16)."""

    def __init__(self, frame_chans: int, grid: int, pc: dict) -> None:
        super().__init__()
        self.frame_chans = frame_chans
        self.conv_act = nn.Sequential(
            nn.Conv2d(frame_chans, 180, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(180), nn.ReLU()
        )
        self.vit_pos = PositionCalibration(frame_chans, grid, **pc)
        self.main_branch = MainBranch(180)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onset, apex = x[:, : self.frame_chans], x[:, self.frame_chans :]
        pos = self.vit_pos(onset)
        return self.main_branch(self.conv_act(apex - onset), pos)


class MMNet(nn.Module):
    """MMNet on onset|apex face crops stacked on channels; see the module docstring."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 6,
        img_size: int = 224,
        pos_depth: int = 2,
        pos_heads: int = 4,
        pos_mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        pos_antialias: bool = False,
    ) -> None:
        super().__init__()
        if in_chans < 2 or in_chans % 2:
            raise ValueError(f"in_chans must be 2 * channels per frame (onset then apex), got {in_chans}")
        if img_size < 16 or img_size % 16:
            raise ValueError(f"img_size must be a positive multiple of 16, got {img_size}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.grid = img_size // 16
        pc = dict(depth=pos_depth, heads=pos_heads, mlp_ratio=pos_mlp_ratio, drop_path_rate=drop_path_rate)
        pc["antialias"] = pos_antialias
        self.stages = nn.ModuleList([MMNetBody(in_chans // 2, self.grid, pc), nn.Identity()])
        # the release's fc keeps nn.Linear's default init
        self.head = nn.Sequential(nn.Flatten(1), nn.Linear(512 * self.grid * self.grid, num_classes))

    def forward(self, x: torch.Tensor, manifold: ManifoldPlan | None = None) -> torch.Tensor:
        """Logits (B, num_classes) for x (B, in_chans, img_size, img_size): onset channels, then apex channels."""
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected (B, {self.in_chans}, {self.img_size}, {self.img_size}), got {tuple(x.shape)}")
        return self.head(run_stages(self.stages, x, manifold))


_UNUSED_RELEASE_PREFIXES = ("pos.", "head.", "timeembed", "vit_pos.cls_token", "vit_pos.head.", "vit_pos.to_Mask.")


def state_dict_from_release(release: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict of the release's ``MMNet`` (CASME2_5.py) renamed for this module, unused entries dropped.

    ``main_branch.fc`` becomes ``head.1``; every other used key gets the ``stages.0.`` prefix. The release's
    Sequential layers (``main_branch.layerN.0.*``) keep their names. Buffers (BN running stats) come along.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in release.items():
        if key.startswith("main_branch.fc."):
            out["head.1." + key.removeprefix("main_branch.fc.")] = value
        elif not key.startswith(_UNUSED_RELEASE_PREFIXES):
            out["stages.0." + key] = value
    return out
