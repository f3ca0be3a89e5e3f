"""The published MER comparison the architecture table is read against (MixMeFormer's comparison, Gu et al.,
ICASSP 2024; figures as it prints them, Acc / F1, on SAMM). Data, not code: one row per network, with the
registry name where memix builds it and, where it does not, what public material lacks.

The rows mix 3- and 5-class tasks, UAR and accuracy, last-epoch and best-epoch-on-the-test-subject selection; each
built module's ``PUBLISHED`` says what its figure was measured on.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PublishedRow:
    """One network of the published table; ``built`` is its ``model.name`` here (None: not built, see ``why``)."""

    network: str
    year: int
    kind: str
    acc: float | None
    f1: float | None
    built: str | None = None
    why: str = ""
    measured_on: str = ""  # what the figure was measured on, where no module of memix.models.arch records it


PUBLISHED_TABLE: tuple[PublishedRow, ...] = (
    PublishedRow("STSTNet", 2019, "CNN", 68.10, 0.6588, built="ststnet"),
    PublishedRow(
        "AU-GACN", 2020, "GCN", 70.20, 0.4330,
        why="no public code (the authors' repository AU-GACN/AU-assisted-Graph-Attention-Convolutional-Network-"
        "forMicro-Expression-Recognition holds a README and figures only; its issue asking for the code, open since "
        "2020, is unanswered); its figure (SAMM, 3 classes) rests on GAN-synthesised AU-conditioned training "
        "sequences that are not public, and it needs frame sequences and AU labels the pipeline does not cache",
    ),
    PublishedRow(
        "MiMANet", 2021, "CNN", 76.60, 0.7640,
        why="no public code; needs a macro-expression video database for pre-training and its transfer losses",
    ),
    PublishedRow(
        "MERSiamC3D", 2021, "CNN", 72.80, 0.7475,
        why="no public code; the key-frame construction and the Siamese prior-learning stage are not specified in "
        "public material (closed paper)",
    ),
    PublishedRow(
        "MAPNet", 2022, "CNN", 86.50, 0.8160,
        why="no public code, and no paper of that name on micro-expressions could be identified",
    ),
    PublishedRow("AMAN", 2022, "CNN", 68.85, 0.6682, built="aman"),
    PublishedRow("MMNet", 2022, "CNN + Transformer", 90.22, 0.8391, built="mmnet"),
    PublishedRow(
        "FRL-DGT", 2023, "CNN + Transformer", None, 0.7720,
        why="no public code or weights; the public material we could reach (its abstract, arXiv 2304.04420) names a convolutional displacement generator on onset and apex and three transformer fusions "
        "(AU-region local and global, full face) but not their layers, widths, AU regions or losses, so a build "
        "would invent the network rather than reimplement it",
    ),
    PublishedRow(
        "MixMeFormer", 2024, "Transformer", 90.23, 0.8477, built="mixmeformer",
        measured_on="SAMM (per the authors' later README), 5 classes; best epoch per test subject",
    ),
)
