"""The published MER comparison the architecture table is read against (MixMeFormer's comparison, Gu et al.,
ICASSP 2024; figures as it prints them, Acc / F1, on SAMM), followed by the field's public networks since then
(HTNet, CausalNet: their own releases' figures on the MEGC 2019 composite, UF1 / UAR). Data, not code: one row per
network, with the registry name where memix builds it and, where it does not, what public material lacks.

The rows are not one protocol (STSTNet's "Acc" is its UAR on the MEGC 2019 composite, read last-epoch), and for
seven rows the figure's own source could not be read. Every row carries its label (dataset, classes, metric,
selection rule, the file and line or page it comes from): a built module's ``PUBLISHED``, or the row's own
:class:`Label`; where the figure's own source could not be read, the label says so (:data:`NOT_FOUND`) rather than
guessing.
"""

from __future__ import annotations

import dataclasses

README = "MEMix README (github Nikki-Gu/MEMix, README.md at 6fa67c8)"
"""Where every figure of the table is printed: the release's README, its comparison table at lines 11-21,
introduced at line 7 as experiments "on the SAMM (3-class)" dataset."""

NOT_FOUND = "as printed in the MEMix paper's table; source not found"
"""What a label says where no source of the figure could be read (never a guess)."""


@dataclasses.dataclass(frozen=True)
class Label:
    """What a published figure was measured on, and where that is written (file and line, or page)."""

    dataset: str
    classes: str
    metric: str
    selection: str
    source: str

    def text(self) -> str:
        return (f"dataset: {self.dataset}; classes: {self.classes}; metric: {self.metric}; "
                f"selection: {self.selection}; source: {self.source}")


AS_LABELLED = "SAMM, as the MEMix README labels its table (line 7)"
"""The dataset of a row whose own source could not be read: what the table it is printed in says, no more."""


@dataclasses.dataclass(frozen=True)
class PublishedRow:
    """One network of the published table; ``built`` is its ``model.name`` here (None: not built, see ``why``).

    ``label`` says what the figure was measured on; a network built in :mod:`memix.models.arch` has it in its
    module's ``PUBLISHED`` instead (one place per network), so its row leaves ``label`` unset.
    """

    network: str
    year: int
    kind: str
    acc: float | None
    f1: float | None  # UF1 where the source prints UF1 (the pooled macro F1 of a LOSO run)
    built: str | None = None
    why: str = ""
    label: Label | None = None
    uar: float | None = None


def _unread(line: int, note: str = "") -> Label:
    """The label of a figure printed at ``line`` of the README whose own source could not be read."""
    return Label(
        dataset=AS_LABELLED, classes="3 (per that label)", metric="Acc (%) / F1 as printed",
        selection="not stated where the figure is printed",
        source=f"{NOT_FOUND} ({README}, line {line}){'; ' + note if note else ''}",
    )


PUBLISHED_TABLE: tuple[PublishedRow, ...] = (
    PublishedRow("STSTNet", 2019, "CNN", 68.10, 0.6588, built="ststnet"),
    PublishedRow(
        "AU-GACN", 2020, "GCN", 70.20, 0.4330,
        why="no public code (the authors' repository AU-GACN/AU-assisted-Graph-Attention-Convolutional-Network-"
        "forMicro-Expression-Recognition holds a README and figures only; its issue asking for the code, open since "
        "2020, is unanswered); its figure rests on GAN-synthesised AU-conditioned training sequences that are not "
        "public, and it needs frame sequences and AU labels the pipeline does not cache",
        label=_unread(18, "the AU-GACN paper (ACM MM 2020) could not be read; the survey of Li et al. (arXiv "
                      "2107.02823), read in a copy of its table, lists the same pair for SAMM, LOSO, 3 classes"),
    ),
    PublishedRow(
        "MiMANet", 2021, "CNN", 76.60, 0.7640,
        why="no public code; needs a macro-expression video database for pre-training and its transfer losses",
        label=_unread(14, "the MiMaNet paper (IJCAI 2021) could not be read; the survey of Li et al. (arXiv "
                      "2107.02823), read in a copy of its table, lists MiMaNet on SAMM with 5 classes, F1 0.764, "
                      "Acc 76.7, which disagrees with the README's 3-class label and its 76.60"),
    ),
    PublishedRow(
        "MERSiamC3D", 2021, "CNN", 72.80, 0.7475,
        why="no public code; the key-frame construction and the Siamese prior-learning stage are not specified in "
        "public material (closed paper)",
        label=_unread(15),
    ),
    PublishedRow(
        "MAPNet", 2022, "CNN", 86.50, 0.8160,
        why="no public code, and no paper of that name on micro-expressions could be identified",
        label=_unread(16),
    ),
    PublishedRow("AMAN", 2022, "CNN", 68.85, 0.6682, built="aman"),
    PublishedRow("MMNet", 2022, "CNN + Transformer", 90.22, 0.8391, built="mmnet"),
    PublishedRow(
        "FRL-DGT", 2023, "CNN + Transformer", None, 0.7720,
        why="no public code or weights; the public material we could reach (its abstract, arXiv 2304.04420, and the "
        "opening of its ar5iv HTML rendering: title, authors, abstract and the introduction's first paragraphs; its "
        "method section could not be read from here) names a "
        "convolutional displacement generator on onset and apex and three transformer fusions (AU-region local and "
        "global, full face) but not their layers, widths, AU regions or losses, so a build would invent the network "
        "rather than reimplement it",
        label=_unread(20, "the FRL-DGT paper (CVPR 2023) could not be read beyond its abstract; the README prints no "
                      "accuracy for it"),
    ),
    PublishedRow(
        "MixMeFormer", 2024, "Transformer", 90.23, 0.8477, built="mixmeformer",
        label=Label(
            dataset="SAMM (README line 7: 'SAMM (3-class)')", classes="3", metric="Acc (%) / F1",
            selection="best epoch per test subject, the release's rule (main.py lines 193-204, in its CASME II "
            "script; no SAMM script is released): memix's `oracle`",
            source=f"{README}, line 21",
        ),
    ),
    PublishedRow("HTNet", 2023, "Transformer", None, 0.8603, built="htnet", uar=0.8475),
    PublishedRow("CausalNet", 2025, "Transformer", 91.18, 0.8976, built="causalnet", uar=0.9020),
)
