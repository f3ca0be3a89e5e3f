"""AMAN: Attention-based Magnification-Adaptive Network for micro-expression recognition.

Paper: Mengting Wei, Wenming Zheng, Yuan Zong, Xingxun Jiang, Cheng Lu, Jiateng Liu, "A Novel Micro-Expression
Recognition Approach Using Attention-Based Magnification-Adaptive Networks", ICASSP 2022, pp. 2420-2424
(doi:10.1109/ICASSP43922.2022.9747232). The paper's text was not readable offline; everything below comes from the
authors' release github.com/weimengting/AMAN at commit f4e3143a6e04745a62f2a7dd04d0da8394950226 (the files read,
``main/network.py``, ``main/train.py``, ``main/config.py``, ``extract_features/resnet.py``,
``extract_features/resnet_features.py``, ``dataset/load_dataset.py``, are unchanged since 84e343a46672).

What the network is. Every clip is turned into F frames, each magnified at K amplification factors (learning-based
motion magnification, Oh et al. ECCV 2018), i.e. F*K RGB images resized to 224 x 224 and ImageNet-normalised. A
ResNet-18 pre-trained on FER+ maps each image to its layer3 output (256 x 14 x 14); the release computes these
features once, offline, and trains only the head on them. The head (``main/network.py``, class ``AMAN``):

1. a ResNet-18 ``layer4`` (two BasicBlocks, 256 -> 512, stride 2, 1x1-conv + BN shortcut), randomly initialised
   (the release never loads the FER+ layer4 into it), then global average pooling: one 512-vector per (frame, level);
2. magnification attention (MA): score a = sigmoid(Linear(512, 1)(v)) per level; a frame's vector is
   sum_k a_k v_k / sum_k a_k over its K levels (one Linear shared by all frames and levels);
3. frame attention (FA): the same form with its own Linear(512, 1), over the F frame vectors;
4. ``pred_fc``: Linear(512, num_classes).

Trainable parameters (the head): 8,397,319 for 5 classes, 8,396,293 for 3 (counted by instantiating the release's
``main/network.py`` ``AMAN(num_classes)`` and summing ``requires_grad`` parameters; it matches the layer sum
layer4 8,393,728 + alpha 513 + beta 513 + fc 513*C). The frozen trunk (conv1 .. layer3) adds 2,782,784.

Inputs (``INPUTS = "magnified"``): ``forward`` takes any of
* (B, F*K*3, S, S): the F*K magnified images stacked on channels, frame-major, then level, then RGB
  (channel (f*K + k)*3 + c), each normalised as the release does (ImageNet mean/std, S = 224);
* (B, F, K, 3, S, S): the same images unstacked;
* (B, F, K, 256, h, w): precomputed trunk features (what the release trains on; h = w = 14 at S = 224);
  F and K may then differ from the constructor's, as in the release.
The memix pipeline does not make magnified frames yet. It would need a cached stage that, per clip, selects the
F frames, magnifies each against the onset frame at K factors with the learning-based magnifier (the release ships
its weights, ``mag_imple/learning_based_mag.pth.tar``, and a demo ``mag_imple/mag.py``: 384 x 384 inputs scaled to
[-1, 1], factors there ``linspace(2, 12, 32)``), and caches either the images or, better, the layer3 features of
the FER+ ResNet-18. Its parameters: the frame selection and F, the factor list and K, the magnifier's weights and
input size, the trunk's weights. The release gives none of the paper's choices: ``network.py``'s demo input is
(4, 11, 9, 256, 14, 14), i.e. F = 11 frames x K = 9 levels, the loader's comment says (btz, 10, 9, ...), and the
loader reads one folder per "integrated" frame without saying how frames are integrated. We default to F = 11,
K = 9 (``in_chans = 3 * 11 * 9 = 297``).

Trunk weights: the FER+ ResNet-18 (``assets/Resnet18_FER+_pytorch.pth.tar``) is listed in the release but its blob
is absent from the stored snapshot, and nothing is downloaded here: the trunk is randomly initialised unless a
state dict is handed to ``load_trunk_state``. It is frozen (``train_trunk=False``, as in the release, where it is
not part of the trained model) and kept in eval mode. The release ran its extractor without ``.eval()``, so its
BatchNorm layers normalised each frame's K magnified images with their own batch statistics; we do not reproduce
that (a frozen trunk here uses running statistics).

Choices where the release is silent or ambiguous, and what is not matched:
* BatchNorm in the head during training: the release applies ``layer4`` to one (frame, level) slot at a time, so
  each BN normalises over the B samples of one slot and its running statistics are updated F*K times per step,
  frames outer, levels inner. In training mode we do the same loop (faithful, F*K small convolutions); in eval mode
  we run all slots as one batch (identical maths). The release's default ``DataParallel`` over 4 GPUs further splits
  each batch of 4 into one sample per replica; that is not reproduced.
* Stages for manifold mixing (one tensor flows between them): stage 0 the trunk, images (B, F*K*3, S, S) ->
  features (B, F, K, 256, h, w); stage 1 ``layer4`` + pooling -> (B, F, K, 512); stage 2 MA -> (B, F, 512);
  stage 3 FA -> (B, 512); ``head`` is ``pred_fc``. With feature input, stage 0 is skipped and a mix at block 0
  mixes the features entering stage 1.
* Weight init: PyTorch defaults, as in the release (its ``utils._initialize_weights`` is never called).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from memix.mixing.base import ManifoldPlan
from memix.models.staged import run_stages

YEAR = 2022
TYPE = "CNN"
PAPER = (
    "M. Wei, W. Zheng, Y. Zong, X. Jiang, C. Lu, J. Liu, 'A Novel Micro-Expression Recognition Approach Using "
    "Attention-Based Magnification-Adaptive Networks', ICASSP 2022"
)
INPUTS = "magnified"  # F frames x K magnification levels per clip, or their trunk features (module docstring)

RELEASED_COMMIT = "f4e3143a6e04745a62f2a7dd04d0da8394950226"
RELEASED = {
    "repo": "weimengting/AMAN",
    "path": "main/network.py",
    "commit": RELEASED_COMMIT,
    "trainable_params": 8_397_319,
    "num_classes": 5,
    "note": (
        "AMAN(num_classes=5) of main/network.py (5 = main/config.py default, SAMM), instantiated and its "
        "requires_grad parameters summed: layer4 8,393,728 + alpha 513 + beta 513 + pred_fc 2,565. The FER+ "
        "ResNet-18 trunk (conv1..layer3, 2,782,784 parameters) runs offline in extract_features/ and is not "
        "part of the trained model."
    ),
}

RECIPE = {
    "optimizer": "RMSprop (torch defaults alpha=0.99, momentum=0) over requires_grad params (main/train.py)",
    "lr": "1e-3 (main/config.py --learning_rate default; declared type=int, so only the default works)",
    "eps": "1e-8 (main/train.py)",
    "weight_decay": "1e-4 (main/train.py)",
    "schedule": "StepLR(step_size=30, gamma=0.2), stepped once per epoch (main/train.py)",
    "epochs": "50 (main/config.py); a subject's training stops early once its test accuracy reaches 1.0",
    "batch_size": "4 (main/config.py); test subject evaluated in one batch (dataset/load_dataset.py)",
    "loss": "cross-entropy (main/train.py)",
    "input": (
        "224 x 224 RGB magnified frames, ImageNet mean/std (extract_features/resnet_features.py), through the "
        "frozen FER+ ResNet-18 conv1..layer3 offline -> (F, K, 256, 14, 14) per clip; no augmentation"
    ),
    "protocol": (
        "LOSO over the subject folders, range(27) hard-coded (main/train.py); per test subject the predictions "
        "of the epoch with the best test accuracy are recorded (main/train.py set_train): test-set model selection"
    ),
    "selection": (
        "test-set selection by accuracy alone (main/train.py lines 52-75): per subject the predictions of the EARLIEST "
        "best-accuracy epoch (`acc_number / len_val > best_acc`) are recorded, and while the best accuracy is still 0 "
        "each epoch's predictions overwrite them (a subject never right gives its last epoch); F1 is computed on those "
        "same predictions, not on a best-F1 epoch of its own (memix's `oracle` takes F1 from its own best-F1 epoch, "
        "so its F1 can only be higher than this rule's)"
    ),
    "classes": "num_classes=5, dataset SAMM (main/config.py defaults); label = last character of the clip folder",
    "init": "PyTorch defaults; head trained from scratch (FER+ weights only in the offline trunk)",
}

PUBLISHED = {
    "acc": 68.85,
    "f1": 0.6682,
    "dataset": "SAMM, as the MEMix README labels its table (line 7); the AMAN release defaults to SAMM "
    "(main/config.py)",
    "classes": "3 per that label; 5 in the release's defaults (main/config.py): not settled",
    "metric": "Acc (%) / F1 as printed",
    "selection": "not stated where the figure is printed (AMAN's release keeps per test subject the earliest "
    "best-accuracy epoch's predictions for both Acc and F1, main/train.py lines 52-75)",
    "source": "as printed in the MEMix paper's table; source not found (MEMix README, github Nikki-Gu/MEMix, README.md "
    "at 6fa67c8, line 17): the AMAN paper's tables could not be read and its release prints no results",
}

IMAGE_CHANNELS = 3
TRUNK_CHANNELS = 256
FEATURE_DIM = 512


class _BasicBlock(nn.Module):
    """ResNet BasicBlock: 3x3 conv-BN-ReLU, 3x3 conv-BN, plus the (optionally projected) input, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _res_layer(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Two BasicBlocks, the first with the stride (ResNet-18 layer)."""
    return nn.Sequential(_BasicBlock(in_ch, out_ch, stride), _BasicBlock(out_ch, out_ch))


class ResNet18Trunk(nn.Module):
    """ResNet-18 up to layer3 (the release's ``extract_features/resnet.py`` forward): (N, 3, S, S) -> (N, 256, S/16,
    S/16). Parameter names follow torchvision / the release, so a FER+ state dict loads without renaming."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(IMAGE_CHANNELS, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _res_layer(64, 64, 1)
        self.layer2 = _res_layer(64, 128, 2)
        self.layer3 = _res_layer(128, TRUNK_CHANNELS, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer3(self.layer2(self.layer1(x)))


class TrunkStage(nn.Module):
    """Stage 0: stacked magnified images (B, F*K*3, S, S) -> per-image trunk features (B, F, K, 256, h, w).

    Frozen by default (no gradients, BatchNorm on running statistics whatever the model's mode)."""

    def __init__(self, num_frames: int, num_levels: int, trainable: bool) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.num_levels = num_levels
        self.trainable = trainable
        self.trunk = ResNet18Trunk()
        self.trunk.requires_grad_(trainable)
        if not trainable:
            self.trunk.eval()

    def train(self, mode: bool = True) -> TrunkStage:
        super().train(mode)
        if not self.trainable:
            self.trunk.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, s_h, s_w = x.shape
        images = x.reshape(b * self.num_frames * self.num_levels, IMAGE_CHANNELS, s_h, s_w)
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            feats = self.trunk(images)
        return feats.reshape(b, self.num_frames, self.num_levels, *feats.shape[1:])


class LevelStage(nn.Module):
    """Stage 1: (B, F, K, 256, h, w) -> (B, F, K, 512): the release's ``layer4`` then global average pooling.

    In training mode every (frame, level) slot goes through ``layer4`` on its own, frames outer and levels inner,
    as in the release, so BatchNorm's batch statistics and running-statistic updates match it; in eval mode all
    slots go as one batch (the same result)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer4 = _res_layer(TRUNK_CHANNELS, FEATURE_DIM, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, f, k = x.shape[:3]
        if self.training:
            slots = [self.pool(self.layer4(x[:, j, i])).flatten(1) for j in range(f) for i in range(k)]
            return torch.stack(slots, dim=1).reshape(b, f, k, FEATURE_DIM)
        out = self.pool(self.layer4(x.reshape(b * f * k, *x.shape[3:]))).flatten(1)
        return out.reshape(b, f, k, FEATURE_DIM)


class AttentionPool(nn.Module):
    """Sigmoid-scored weighted mean over one axis: a = sigmoid(w.v + b); sum(a v) / sum(a).

    ``dim=2`` on (B, F, K, 512) is the magnification attention (stage 2), ``dim=1`` on (B, F, 512) the frame
    attention (stage 3)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.score = nn.Sequential(nn.Linear(FEATURE_DIM, 1), nn.Sigmoid())

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        a = self.score(v)
        return (v * a).sum(self.dim) / a.sum(self.dim)


class AMAN(nn.Module):
    """AMAN (Wei et al., ICASSP 2022): ResNet-18 trunk, layer4 per magnified frame, magnification and frame
    attention, linear classifier. See the module docstring for inputs, stages and what follows the release."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = IMAGE_CHANNELS * 11 * 9,
        img_size: int = 224,
        num_levels: int = 9,
        train_trunk: bool = False,
    ) -> None:
        super().__init__()
        if num_levels < 1 or in_chans <= 0 or in_chans % (IMAGE_CHANNELS * num_levels):
            raise ValueError(
                f"in_chans must be 3 * frames * num_levels (frames >= 1); got in_chans={in_chans}, "
                f"num_levels={num_levels}"
            )
        if img_size < 32:
            raise ValueError(f"img_size must be >= 32 (the trunk and layer4 downsample by 32), got {img_size}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.num_levels = num_levels
        self.num_frames = in_chans // (IMAGE_CHANNELS * num_levels)
        self.stages = nn.ModuleList(
            [
                TrunkStage(self.num_frames, num_levels, train_trunk),
                LevelStage(),
                AttentionPool(dim=2),  # magnification attention (the release's ``alpha``)
                AttentionPool(dim=1),  # frame attention (the release's ``beta``)
            ]
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, x: torch.Tensor, manifold: ManifoldPlan | None = None) -> torch.Tensor:
        """Logits (B, num_classes) from stacked images, unstacked images or trunk features (module docstring)."""
        h, start = self._prepare(x)
        return self.head(run_stages(self.stages, h, manifold, first=start))

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The tensor entering the first stage to run, and that stage's index."""
        if x.ndim == 6:
            if x.shape[3] == TRUNK_CHANNELS:
                return x, 1
            if x.shape[3] == IMAGE_CHANNELS and x.shape[1:3] == (self.num_frames, self.num_levels):
                return x.reshape(x.shape[0], self.in_chans, *x.shape[4:]), 0
        elif x.ndim == 4 and x.shape[1] == self.in_chans:
            return x, 0
        raise ValueError(
            f"expected (B, {self.in_chans}, S, S) images, (B, {self.num_frames}, {self.num_levels}, 3, S, S) "
            f"images or (B, F, K, {TRUNK_CHANNELS}, h, w) features, got {tuple(x.shape)}"
        )

    def load_release_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a state dict of the release's ``AMAN`` (keys ``layer4.*``, ``alpha.0.*``, ``beta.0.*``,
        ``pred_fc.*``, optionally ``module.``-prefixed by DataParallel) into the head; the trunk is untouched."""
        renamed = {}
        for key, value in state_dict.items():
            key = key.removeprefix("module.")
            for old, new in (("layer4.", "stages.1.layer4."), ("alpha.", "stages.2.score."),
                             ("beta.", "stages.3.score."), ("pred_fc.", "head.")):
                if key.startswith(old):
                    renamed[new + key[len(old):]] = value
                    break
            else:
                raise KeyError(f"unexpected key in the release's AMAN state dict: {key}")
        missing = set(self.state_dict()) - set(renamed)
        missing = {k for k in missing if not k.startswith("stages.0.")}
        if missing:
            raise KeyError(f"release state dict lacks {sorted(missing)}")
        self.load_state_dict(renamed, strict=False)

    def load_trunk_state(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a ResNet-18 state dict (e.g. the release's FER+ checkpoint's ``state_dict``, ``module.``-prefixed or
        not) into the trunk; ``layer4.*`` and ``fc.*`` are ignored, as the release's extractor ignores them."""
        trunk_state = {
            k.removeprefix("module."): v
            for k, v in state_dict.items()
            if not k.removeprefix("module.").startswith(("layer4.", "fc."))
        }
        self.stages[0].trunk.load_state_dict(trunk_state)
