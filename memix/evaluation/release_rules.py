"""The ``release`` rule: each network's figure under ITS OWN release's epoch selection, one record per release.

The published comparison prints every network's figure as its authors' code produced it, and each release chose
its epoch differently, most of them on the test subject itself. A :class:`ReleaseRule` records one release's loop
(where it is, which epochs it scores, its tie rule, whether Acc and F1 come from one epoch, its early stop, what
becomes of a subject it never gets right); :func:`select_best_accuracy` is the loop shared by the releases that
keep one best-accuracy epoch per subject, driven by the record's tie and never-right fields. The ``last`` and
``oracle`` loops are :mod:`memix.evaluation.selection`'s (which dispatches on :attr:`ReleaseRule.selects`).

What the rule reproduces is the choice of epoch per (seed, fold) and which clips enter the pool; the figures are
then memix's pooled Acc, UF1 and UAR over every class (not each release's own metric code). A release that scores
every epoch is matched on the epochs evaluated here: with ``train.eval_every > 1`` it sees fewer epochs than the
release did. A release's ``val_acc = correct / n`` compares epochs of one subject, whose ``n`` is fixed, so
comparing correct counts is exact (:mod:`tests/evaluation/test_release_rules.py` holds each rule to a literal
transcription of its release's loop).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from memix.names import ARCHITECTURES

RUN = ["seed", "fold"]
"""One LOSO fold of one training run (as :data:`memix.evaluation.selection.RUN`, which imports this module)."""


@dataclass(frozen=True)
class ReleaseRule:
    """One release's test-set loop, as its code runs it."""

    network: str
    """The network it is the release of (an architecture's ``model.name``, ``mixmeformer`` or ``vit``)."""
    release: str
    """The release repository (GitHub owner/name)."""
    where: str
    """The file(s) and lines of its selection loop."""
    selects: Literal["last", "oracle", "best_accuracy"]
    """``last``: the final epoch; ``oracle``: the MEMix loop (Acc from the best-accuracy epoch, UF1 and UAR from the
    best-F1 epoch: :func:`memix.evaluation.selection.select_oracle`); ``best_accuracy``: one best-accuracy epoch
    whose predictions give every metric (:func:`select_best_accuracy`)."""
    test: str
    """Its comparison(s) as written in the release."""
    strict: bool | None
    """The accuracy test is strict (``>``, from 0: the EARLIEST of tied epochs) or not (``>=``/``<=``: the LATEST);
    None where nothing is compared."""
    together: bool
    """True: one epoch gives Acc, UF1 and UAR; False: Acc and F1 are chosen separately."""
    early_stop: bool
    """The release stops a fold once its test subject is 100 % right (never changes the choice: a later epoch can
    only tie a perfect one)."""
    drops_never_right: bool
    """A subject right in no epoch drops out of the pool (its clips' truth and predictions both) instead of keeping
    an epoch's predictions."""
    epochs: str
    """Which epochs it scores."""
    never_right: str
    """What becomes of a subject right in no epoch."""
    description: str
    """One line for the tables."""

    @property
    def tie(self) -> str:
        """Which of the tied best-accuracy epochs it keeps: earliest, latest, or none (no comparison)."""
        return "none" if self.strict is None else "earliest" if self.strict else "latest"

    def record(self) -> dict[str, Any]:
        """The record as JSON-ready data (metrics.json, the architecture table)."""
        return {**dataclasses.asdict(self), "tie": self.tie}


_EVERY_EPOCH = "every evaluated epoch (the release scores every epoch)"

_MEMIX_TEST = "bingo_cnt > max_corr (accuracy), AVG_F1 >= max_f1 (float32 F1), both from 0"
_MEMIX_NEVER_RIGHT = (
    "kept: 0 correct clips for Acc; UF1/UAR from its latest best-F1 epoch (its last if F1 is 0 throughout)"
)
_MEMIX_DESCRIPTION = (
    "TEST-SET SELECTION, the MEMix loop (= oracle): per subject Acc from the earliest best-accuracy epoch, UF1 and "
    "UAR from the latest best-F1 epoch"
)


def _memix_loop(network: str, release: str, where: str, early_stop: bool) -> ReleaseRule:
    return ReleaseRule(
        network=network, release=release, where=where, selects="oracle", test=_MEMIX_TEST, strict=True,
        together=False, early_stop=early_stop, drops_never_right=False, epochs=_EVERY_EPOCH,
        never_right=_MEMIX_NEVER_RIGHT, description=_MEMIX_DESCRIPTION,
    )


RULES: dict[str, ReleaseRule] = {
    "ststnet": ReleaseRule(
        network="ststnet", release="christy1206/STSTNet", where="main.py lines 213-224", selects="last",
        test="none: tests after the last epoch", strict=None, together=True, early_stop=False,
        drops_never_right=False, epochs="the final epoch only", never_right="kept: its last epoch, as every subject",
        description="honest: each subject's last epoch (main.py tests after the final epoch; = last)",
    ),
    "mmnet": _memix_loop("mmnet", "muse1998/MMNet", "CASME2_5.py lines 591-597", early_stop=False),
    "mixmeformer": _memix_loop("mixmeformer", "Nikki-Gu/MEMix", "main.py lines 193-204", early_stop=True),
    "vit": _memix_loop("vit", "Nikki-Gu/MEMix", "main.py lines 193-204", early_stop=True),
    "aman": ReleaseRule(
        network="aman", release="weimengting/AMAN", where="main/train.py lines 52-75", selects="best_accuracy",
        test="acc_number / len_val > best_acc, from 0; while best_acc == 0 each epoch overwrites the kept predictions",
        strict=True, together=True, early_stop=True, drops_never_right=False, epochs=_EVERY_EPOCH,
        never_right="kept: its last epoch (while best_acc is 0 every epoch overwrites the kept predictions)",
        description="TEST-SET SELECTION by accuracy: per subject the earliest best-accuracy epoch's predictions give "
        "Acc, UF1 and UAR (a never-right subject: its last epoch)",
    ),
    "htnet": ReleaseRule(
        network="htnet", release="wangzhifengharrison/HTNet", where="main_HTNet.py lines 293-301",
        selects="best_accuracy", test="best_accuracy_for_each_subject <= val_acc, from 0", strict=False,
        together=True, early_stop=False, drops_never_right=False, epochs=_EVERY_EPOCH,
        never_right="kept: its last epoch (0 <= 0 holds in every epoch)",
        description="TEST-SET SELECTION by accuracy: per subject the LATEST best-accuracy epoch's predictions give "
        "Acc, UF1 and UAR (a never-right subject: its last epoch)",
    ),
    "causalnet": ReleaseRule(
        network="causalnet", release="tony19980810/CausalNet",
        where="main_train.py lines 346-363; calculate_all_results.py lines 36-71", selects="best_accuracy",
        test="best_accuracy_for_each_subject < val_acc, from 0; break once val_acc >= 1", strict=True,
        together=True, early_stop=True, drops_never_right=True, epochs=_EVERY_EPOCH,
        never_right="DROPPED: best_matrix stays [], so calculate_all_results.py pools none of its clips (truth and "
        "prediction both), which inflates the figure",
        description="TEST-SET SELECTION by accuracy: per subject the earliest best-accuracy epoch's predictions give "
        "Acc, UF1 and UAR; a subject right in no epoch DROPS OUT of the pool (inflates the figure)",
    ),
}
"""Every release's rule, by network."""


def release_rule(network: str) -> ReleaseRule:
    """The rule of ``network``'s own release; ValueError naming the networks that have one."""
    if network not in RULES:
        raise ValueError(f"no release rule for network {network!r} (release rules exist for: {', '.join(RULES)})")
    return RULES[network]


def select_best_accuracy(preds: pd.DataFrame, rule: ReleaseRule) -> pd.DataFrame:
    """TEST-SET SELECTION: per (seed, fold) the rows of the one epoch ``rule``'s release keeps by test accuracy.

    The release runs ``if best <?= correct / n`` over the epochs in order with ``best`` from 0, so: among the
    epochs with the most correct clips, the earliest (strict ``<``) or the latest (``<=``). A fold right in no
    epoch: its last epoch (``<=`` holds every epoch; AMAN overwrites while its best is 0), or, where
    ``rule.drops_never_right``, no rows at all. All (seed, fold, epoch) scored at once with counts.
    """
    if rule.selects != "best_accuracy":
        raise ValueError(f"{rule.network}'s release selects {rule.selects!r}, not one best-accuracy epoch")
    keys = [*RUN, "epoch"]
    group = preds.groupby(keys, sort=True).ngroup().to_numpy()
    n_groups = int(group.max()) + 1 if len(group) else 0
    right = (preds["true"].to_numpy() == preds["pred"].to_numpy())
    groups = preds[keys].drop_duplicates().sort_values(keys, kind="stable").reset_index(drop=True)
    groups["correct"] = np.bincount(group, weights=right, minlength=n_groups)  # exact integers
    most = groups.groupby(RUN, sort=False)["correct"].transform("max")
    last = groups.groupby(RUN, sort=False)["epoch"].transform("max")
    best = groups[(groups["correct"] == most) & (most > 0)]
    best = best.drop_duplicates(RUN, keep="first" if rule.strict else "last")  # epochs ascend within a run
    never = groups[(most == 0) & (groups["epoch"] == last)]
    kept = best if rule.drops_never_right else pd.concat([best, never])
    return preds[pd.MultiIndex.from_frame(preds[keys]).isin(pd.MultiIndex.from_frame(kept[keys]))]




def network(model: dict[str, Any]) -> str:
    """The network a model spec (``run.json``'s ``model``, or ``params.model`` dumped) builds: an architecture's
    ``model.name``, else ``mixmeformer`` (a ViT with the face stream) or ``vit``; the key of the published table's
    ``built`` and of :data:`RULES`. Torch-free (:mod:`memix.names`), so the evaluate stage can ask it."""
    if model["name"] in ARCHITECTURES:
        return str(model["name"])
    return "mixmeformer" if model.get("face_stream") else "vit"


__all__ = ["RULES", "ReleaseRule", "network", "release_rule", "select_best_accuracy"]
