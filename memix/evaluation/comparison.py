"""The comparison's numbers: each method's evaluation as compare reads it, and per rule and method the spread over
seeds and the paired bootstrap differences to the baseline (:func:`compare`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix.config import Params
from memix.evaluation import metrics, selection, stats


@dataclass
class MethodEval:
    """One method's evaluation as compare reads it."""

    name: str
    content: dict[str, Any]
    selected: pd.DataFrame
    path: Path

    def per_seed(self, rule: str, metric: str) -> list[float]:
        src = selection.source(rule, metric)
        try:
            return [float(s[src][metric]) for s in self.content["per_seed"]]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: missing metric {src}/{metric} ({err})") from None

    def last_train_accuracy(self) -> float | None:
        """The seed mean of the last epoch's training accuracy (on the batches it trained on: augmented, and mixed
        for a mixing method), pooled over folds; None where the evaluation has no training curve."""
        curves = self.content.get("curves") or {}
        values = curves.get("train_accuracy") or []
        return float(values[-1]) if values and values[-1] is not None else None

    def per_dataset(self, rule: str, metric: str, dataset: str) -> list[float]:
        """The seeds' figures of one source; a seed whose selection kept none of its clips (a release rule that
        drops subjects never right) has none and is left out."""
        src = selection.source(rule, metric)
        try:
            values = [s[src]["per_dataset"][dataset][metric] for s in self.content["per_seed"]]
            return [float(v) for v in values if v is not None]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{self.path}: missing metric {src}/per_dataset/{dataset}/{metric} ({err})") from None


@dataclass
class Row:
    """One method under one rule: spreads over seeds, and (not for the baseline) its differences."""

    spread: dict[str, stats.Spread]
    delta: dict[str, float] = field(default_factory=dict)
    delta_per_seed: dict[str, list[float]] = field(default_factory=dict)
    interval: dict[str, stats.Interval] = field(default_factory=dict)
    per_dataset: dict[str, dict[str, stats.Spread]] = field(default_factory=dict)


def load(method: str, eval_root: Path, seeds: list[int]) -> MethodEval:
    """Read ``eval_root/<method>/`` and check it covers exactly ``seeds``; errors name the file."""
    folder = Path(eval_root) / method
    path = folder / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no evaluation of method {method!r} (run its train and evaluate stages)")
    try:
        content = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    found = content.get("seeds")
    if found != sorted(seeds):
        raise ValueError(f"{path}: evaluates seeds {found}, compare.seeds is {sorted(seeds)} (rerun its stages)")
    sel_path = folder / "selected.parquet"
    if not sel_path.is_file():
        raise FileNotFoundError(f"{sel_path}: selected predictions of method {method!r} missing")
    try:
        selected = pd.read_parquet(sel_path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ValueError(f"{sel_path}: unreadable parquet ({err})") from None
    return MethodEval(method, content, selected, path)


def _subject_cms(ev: MethodEval, src: str, seeds: list[int], units: pd.MultiIndex, k: int) -> np.ndarray:
    rows = ev.selected[ev.selected["selection"] == src]
    seed_idx = pd.Index(seeds).get_indexer(rows["seed"])
    subj_idx = units.get_indexer(pd.MultiIndex.from_frame(rows[["dataset", "subject"]]))
    if (seed_idx < 0).any() or (subj_idx < 0).any():
        raise ValueError(f"{ev.path.parent / 'selected.parquet'}: rows of seeds or subjects outside the comparison")
    return stats.subject_confusions(seed_idx, subj_idx, rows["true"].to_numpy(), rows["pred"].to_numpy(),
                                    len(seeds), len(units), k)


def _check_paired(ev: MethodEval, base: MethodEval, src: str) -> None:
    """Pairing needs the same test clips with the same truth in every seed. A release's rule may drop a subject
    from its pool (:mod:`memix.evaluation.release_rules`): the subject's clips are then missing whole from one
    side, where it counts nothing, as in that release's figure; any other difference is refused."""
    cols = ["seed", "clip_id", "dataset", "subject", "true"]
    a = ev.selected.loc[ev.selected["selection"] == src, cols].sort_values(cols[:2]).reset_index(drop=True)
    b = base.selected.loc[base.selected["selection"] == src, cols].sort_values(cols[:2]).reset_index(drop=True)
    if a.equals(b) or (src.startswith("release") and _same_but_dropped_subjects(a, b)):
        return
    raise ValueError(
        f"{ev.path.parent / 'selected.parquet'}: its {src} clips differ from the baseline's "
        f"({base.path.parent / 'selected.parquet'}); methods are compared on the same clips only"
    )


def _same_but_dropped_subjects(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether every clip only one side has (or has with another truth) is of a (seed, subject) the other side
    lacks entirely."""
    units = ["seed", "dataset", "subject"]
    both = a.merge(b, how="outer", on=list(a.columns), indicator=True)
    for only, other in (("left_only", b), ("right_only", a)):
        missing = both.loc[both["_merge"] == only, units].drop_duplicates()
        if len(missing.merge(other[units].drop_duplicates(), on=units)):
            return False
    return True


def compare(params: Params, evals: dict[str, MethodEval]) -> dict[str, dict[str, Row]]:
    """{rule: {method: Row}} in ``compare.methods`` order, with paired bootstrap intervals against the baseline."""
    cp = params.compare
    base = evals[cp.baseline]
    seeds = sorted(cp.seeds)
    k = len(base.content["classes"])
    for ev in evals.values():
        if ev.content.get("classes") != base.content["classes"]:
            raise ValueError(f"{ev.path}: classes {ev.content.get('classes')} differ from the baseline's")
    rules = [r for r in selection.RULES if all(r in ev.content.get("mean", {}) for ev in evals.values())]
    if not rules:
        raise ValueError("no epoch-selection rule is evaluated for every method (see eval.rules)")
    datasets = base.content.get("datasets", [])
    units = pd.MultiIndex.from_frame(  # every subject: a release's rule may drop one from the baseline's pool
        pd.concat([ev.selected[["dataset", "subject"]] for ev in evals.values()])
        .drop_duplicates().sort_values(["dataset", "subject"]))
    counts = stats.resample_counts(len(units), cp.bootstrap_resamples, cp.bootstrap_seed)
    cms: dict[tuple[str, str], np.ndarray] = {}

    def subject_cms(ev: MethodEval, src: str) -> np.ndarray:
        if (ev.name, src) not in cms:
            if ev is not base:
                _check_paired(ev, base, src)
            cms[ev.name, src] = _subject_cms(ev, src, seeds, units, k)
        return cms[ev.name, src]

    table: dict[str, dict[str, Row]] = {}
    for rule in rules:
        table[rule] = {}
        for method, ev in evals.items():
            row = Row({m: stats.Spread.of(ev.per_seed(rule, m)) for m in metrics.METRICS})
            if len(datasets) > 1:
                row.per_dataset = {
                    ds: {m: stats.Spread.of(ev.per_dataset(rule, m, ds)) for m in metrics.METRICS} for ds in datasets
                    if ev.per_dataset(rule, "accuracy", ds)  # a source no seed kept a clip of has no figures
                }
            if method != cp.baseline:
                for src in dict.fromkeys(selection.source(rule, m) for m in metrics.METRICS):
                    boot = stats.paired_bootstrap(subject_cms(ev, src), subject_cms(base, src), counts)
                    for m in metrics.METRICS:
                        if selection.source(rule, m) == src:
                            row.interval[m] = boot[m]
                for m in metrics.METRICS:
                    row.delta[m] = row.spread[m].mean - stats.Spread.of(base.per_seed(rule, m)).mean
                    row.delta_per_seed[m] = [
                        a - b for a, b in zip(ev.per_seed(rule, m), base.per_seed(rule, m), strict=True)
                    ]
            table[rule][method] = row
    return table
