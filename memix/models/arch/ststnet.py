"""STSTNet: a shallow triple-stream CNN on the onset->apex optical flow (u, v, optical strain) at 28 x 28.

Paper: S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang, "Shallow Triple Stream Three-dimensional CNN
(STSTNet) for Micro-expression Recognition", IEEE FG 2019 (arXiv:1902.03634; note the author list: Gan, Khor and
Huang, not Wong and Phan). Table I gives the layers, Table III the figures, Section II the learning rate and epochs.

Public releases read (both by the authors, repository christy1206/STSTNet, commit
1afb56e670ee1d4f9864d21e43cfd95a291864e4):

- ``STSTNet.mat`` (MATLAB R2018b layer graph behind the paper's figures) and ``main.m`` (training options);
- ``main.py`` (the authors' PyTorch reproduction, with per-subject weights ``STSTNet_Weights/*.pth``).

tvaranka/meb ``meb/models/me_networks.py`` (commit f731b0a981683a24f6be2e026208811849dee3ad) has the same layers as
``main.py``.

Layers (every stream sees the whole 3-channel input; the stream widths 3, 5, 8 come from ``filters``)::

    x (B, 3, 28, 28) -> per stream k: conv 3x3 stride 1 (filters[k]) -> ReLU -> BatchNorm -> max pool 3x3 stride 3,
    padding 1 -> dropout 0.5;  concatenate the streams on channels in the order 3, 5, 8 -> (B, 16, 10, 10)
    -> average pool 2x2 stride 2, no padding -> (B, 16, 5, 5) -> flatten (400) -> linear -> num_classes logits

ReLU comes before BatchNorm in both releases (the MATLAB graph's connections and ``main.py``); the paper's Table I
lists neither BatchNorm nor dropout, both releases have them (dropout probability 0.5 in both). Concatenation order in
``STSTNet.mat``: depthcat(depthcat(3-stream, 5-stream), 8-stream), the same as ``main.py``.

Choices where the sources disagree or are silent:

- Convolution padding. Table I and ``STSTNet.mat`` say "same" (padding 1, 28 x 28 maps); ``main.py`` uses padding 2
  (30 x 30 maps). Both give 10 x 10 after the pool and the same parameters. ``conv_padding`` defaults to the paper's 1;
  ``conv_padding=2`` is the PyTorch reproduction exactly (its state dict loads through ``convert_released``).
- Max pooling. MATLAB's "same" pooling at stride 3 pads a 28-side map by 1 on each side, which is torch's
  ``padding=1`` (used for every size here, as ``main.py`` does); for other map sizes MATLAB may split the padding
  differently.
- Input normalisation. ``STSTNet.mat``'s input layer subtracts the training set's mean image ("zerocenter");
  ``main.py`` feeds the 0..255 pixel values of the stored flow images as they are (cv2, so channel order BGR of the
  stored u/v/strain image). Here the network takes memix's flow channels as given (``INPUTS = "flow"``); any
  normalisation is the data pipeline's business.
- Initialisation: torch defaults (as ``main.py``, which calls ``reset_parameters``); the MATLAB file does not record
  its initialisers.
- BatchNorm: torch's running statistics (eps 1e-5, momentum 0.1), as ``main.py``; MATLAB R2018b instead computes the
  statistics over the whole training set after training. eps is 1e-5 in both.

Trainable parameters for 3 classes: 1,683 (convolutions 84 + 140 + 224, BatchNorm 2 x 16, linear 400 x 3 + 3): the
same as the sum of the trainable tensors in the released ``STSTNet_Weights/006.pth``. The paper's Table V says
0.00167 million, which neither release matches exactly (1,683 -> 0.00168).

Manifold mixing: the streams run in parallel, so a single tensor flows only at the input and after the
concatenation. ``stages[0]`` is the three-stream block (input -> concatenated (B, 16, 10, 10)), ``stages[1]`` is the
average pool + flatten, ``head`` the linear classifier. ``manifold.block`` 0 mixes the input flow, 1 (or more,
clipped) mixes the concatenated stream features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from memix.mixing.base import ManifoldPlan
from memix.models.staged import run_stages

INPUTS = "flow"
YEAR = 2019
TYPE = "CNN"
PAPER = (
    "S.-T. Liong, Y. S. Gan, J. See, H.-Q. Khor, Y.-C. Huang: Shallow Triple Stream Three-dimensional CNN (STSTNet) "
    "for Micro-expression Recognition. IEEE FG 2019 (arXiv:1902.03634)"
)

RELEASED = {
    "repo": "christy1206/STSTNet",
    "path": "main.py",
    "commit": "1afb56e670ee1d4f9864d21e43cfd95a291864e4",
    "trainable_params": 1683,
    "num_classes": 3,
    "note": (
        "Sum of numel over the trainable tensors (conv/bn weight and bias, fc) of the released state dict "
        "STSTNet_Weights/006.pth (running statistics excluded); equals the count from main.py's layer definitions "
        "(84 + 140 + 224 + 32 + 1203) and from STSTNet.mat's layers (same layers, 'same' padding). main.py uses conv "
        "padding 2 (STSTNet(conv_padding=2) here), STSTNet.mat padding 'same' (the default here)."
    ),
}

RECIPE = {
    "optimizer": "adam",
    "lr": 5e-5,
    "betas": (0.9, 0.999),
    "eps": 1e-8,
    "weight_decay": 1e-4,
    "epochs": 500,
    "batch_size": 256,
    "schedule": "constant",
    "shuffle": "once (MATLAB); none (main.py)",
    "loss": "cross-entropy",
    "input_size": 28,
    "input": "u, v, optical strain of the onset->apex flow, resized to 28 x 28 x 3",
    "protocol": "LOSO over the MEGC 2019 composite set (68 subjects, 442 clips, 3 classes), last epoch evaluated",
    "selection": (
        "the last epoch (memix's `last`): main.m classifies each test subject with the network trainNetwork "
        "returns after MaxEpochs; main.py (lines 213-224) pools the test subject's predictions after its last epoch; "
        "UF1 and UAR over the pooled predictions of all subjects, one class against the rest per class "
        "(recognition_evaluation)"
    ),
    "sources": {
        "optimizer": "main.m trainingOptions('adam', ...) and main.py torch.optim.Adam; the paper does not name it",
        "lr": "paper Sec. II ('initial learning rate is set to 0.00005'), main.m, main.py",
        "betas": "MATLAB trainingOptions defaults (GradientDecayFactor 0.9, SquaredGradientDecayFactor 0.999); "
        "torch defaults in main.py",
        "eps": "MATLAB default Epsilon 1e-8; torch default in main.py",
        "weight_decay": "MATLAB trainingOptions default L2Regularization 1e-4 (main.m sets none), coupled to Adam's "
        "gradient as MATLAB applies it, on the weights only: the convolution and classifier biases have BiasL2Factor 0 "
        "(R2018b's default for convolution2dLayer and fullyConnectedLayer; STSTNet.mat's layers carry an L2Factor per "
        "weight and bias, not decoded here), BatchNorm scale and offset factor 1 (R2018b's default); "
        "STSTNet.no_weight_decay() lists the exempt biases. main.py uses 0",
        "epochs": "paper Sec. II ('epoch value of 500') and main.m MaxEpochs 500; main.py uses 800",
        "batch_size": "main.m MiniBatchSize 256 and main.py batch_size 256; the paper is silent",
        "schedule": "MATLAB default LearnRateSchedule 'none'; main.py has no scheduler",
        "shuffle": "MATLAB default Shuffle 'once'; main.py's DataLoader does not shuffle",
        "loss": "STSTNet.mat classification layer (crossentropyex); main.py nn.CrossEntropyLoss",
        "input_size": "paper Sec. II and Table I; STSTNet.mat InputSize [28 28 3]",
        "protocol": "paper Sec. III-B (k = 68 subjects, LOSOCV); main.m/main.py evaluate the net after the last epoch",
    },
}

PUBLISHED = {
    "acc": 68.10,
    "f1": 0.6588,
    "dataset": "SAMM part (133 clips, 28 subjects) of the MEGC 2019 composite, LOSO over its 68 subjects",
    "classes": 3,
    "metric": "UAR / UF1 (the MEMix table's Acc column holds STSTNet's UAR)",
    "selection": "last epoch (500 epochs, paper Sec. II; both releases test after the last epoch): memix's `last`",
    "source": "STSTNet paper (arXiv 1902.03634) Table III, SAMM columns: UF1 0.6588, UAR 0.6810 (the abstract: 68.10% "
    "UAR on SAMM); printed in the MEMix README (github Nikki-Gu/MEMix, README.md at 6fa67c8), line 13",
}

FILTERS = (3, 5, 8)


class _Stream(nn.Module):
    """One stream: conv 3x3 -> ReLU -> BatchNorm -> max pool 3x3 stride 3 -> dropout."""

    def __init__(self, in_chans: int, width: int, conv_padding: int, drop_rate: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, width, kernel_size=3, stride=1, padding=conv_padding)
        self.act = nn.ReLU()
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.drop = nn.Dropout(drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.pool(self.bn(self.act(self.conv(x)))))


class ThreeStream(nn.Module):
    """The parallel streams on one input, concatenated on channels in stream order."""

    def __init__(self, in_chans: int, filters: Sequence[int], conv_padding: int, drop_rate: float) -> None:
        super().__init__()
        self.streams = nn.ModuleList(_Stream(in_chans, w, conv_padding, drop_rate) for w in filters)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([s(x) for s in self.streams], dim=1)


class STSTNet(nn.Module):
    """STSTNet on (B, in_chans, img_size, img_size) flow; logits (B, num_classes).

    ``filters`` are the stream widths (paper: 3, 5, 8), ``conv_padding`` 1 is the paper's "same" convolution, 2 the
    authors' PyTorch reproduction; ``drop_rate`` the dropout after each stream's pool (0.5 in both releases).
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 3,
        img_size: int = 28,
        filters: Sequence[int] = FILTERS,
        conv_padding: int = 1,
        drop_rate: float = 0.5,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        side = feature_side(img_size, conv_padding)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.img_size = img_size
        self.stages = nn.ModuleList(
            [
                ThreeStream(in_chans, tuple(filters), conv_padding, drop_rate),
                nn.Sequential(nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Flatten(1)),
            ]
        )
        self.head = nn.Linear(sum(filters) * side * side, num_classes)

    def forward(self, x: torch.Tensor, manifold: ManifoldPlan | None = None) -> torch.Tensor:
        """Logits; with ``manifold`` the tensor entering stage ``min(block, 1)`` becomes lam*h + (1-lam)*h[perm]."""
        want = (self.in_chans, self.img_size, self.img_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"flow batch has shape {tuple(x.shape)}, STSTNet expects (B, {want[0]}, {want[1]}, {want[2]})"
            )
        return self.head(run_stages(self.stages, x, manifold))

    def no_weight_decay(self) -> set[str]:
        """The convolution and classifier biases: the MATLAB release decays every weight (L2Regularization 1e-4)
        but its layers' biases at ``BiasL2Factor`` 0; BatchNorm's scale and offset keep factor 1 and decay."""
        return {f"{name}.bias" for name, m in self.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)}


def feature_side(img_size: int, conv_padding: int = 1) -> int:
    """Side of the map entering the classifier: conv 3x3 (padding p), max pool 3/3 (padding 1), avg pool 2/2."""
    conv = img_size + 2 * conv_padding - 2
    pooled = (conv + 2 - 3) // 3 + 1
    side = pooled // 2
    if conv < 1 or side < 1:
        raise ValueError(f"img_size {img_size} is too small for STSTNet (conv_padding {conv_padding})")
    return side


def convert_released(state_dict: Mapping[str, torch.Tensor], streams: int = 3) -> dict[str, torch.Tensor]:
    """A state dict of the released PyTorch model (``conv1..3``, ``bn1..3``, ``fc``) renamed to this module's keys."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        layer, _, rest = key.partition(".")
        if layer == "fc":
            out[f"head.{rest}"] = value
        elif layer[:-1] in ("conv", "bn") and layer[-1].isdigit() and 1 <= int(layer[-1]) <= streams:
            out[f"stages.0.streams.{int(layer[-1]) - 1}.{layer[:-1]}.{rest}"] = value
        else:
            raise KeyError(f"unexpected key in a released STSTNet state dict: {key!r}")
    return out
