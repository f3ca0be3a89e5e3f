"""Pooled LOSO evaluation of one method over all its seeds: ``data/train/<m>/`` -> ``reports/eval/<m>/``.

For every seed, all folds' predictions are pooled and the metrics computed once on the pool (per-fold
averages differ, since test folds are small and miss classes; the per-subject table has them). The epoch
selection rules are reported side by side: ``last`` (each fold's final epoch, the honest default), ``oracle``
(per subject the epoch that scores best on that subject itself, as the released MEMix code does, chosen
separately for accuracy and for F1), which selects on the test set, and, given the network, ``release`` (the
selection of that network's own release, :mod:`memix.evaluation.release_rules`).

Five files, so that DVC has little to check on a no-op:

- ``metrics.json``: per seed and selection Acc, UF1, UAR, per class (and per source dataset when the
  predictions come from several); the mean ± std over seeds per rule; the seed-mean training curves; with the
  ``release`` rule, the network and its release's rule record; with ``eval.keyframe_noise`` levels, per level (0 =
  the unshifted test clips) each seed's Acc, UF1, UAR of the last-epoch models and their mean ± std
  (:mod:`memix.evaluation.keyframe_noise`).
- ``per_subject.csv``: seed, selection, dataset, subject, n, accuracy, uf1, uar.
- ``selected.parquet``: the chosen rows (seed, selection, clip_id, subject, dataset, true, pred), which is
  all the comparison's bootstrap needs.
- ``confusion.csv`` (seed, rule, actual, predicted per clip, for ``dvc plots``: one matrix per seed and rule) and
  ``confusion.png`` (the same matrices, each titled with method, seed and rule).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix import plots
from memix.config import EvalParams, method_title
from memix.evaluation import keyframe_noise, metrics, release_rules, selection, stats
from memix.io import atomic
from memix.io.checks import check_rows

PRED_COLUMNS = ("seed", "clip_id", "subject", "dataset", "fold", "epoch", "true", "pred")
CURVE_COLUMNS = ("seed", "epoch", "train_loss", "train_accuracy", "test_accuracy")
SELECTED_COLUMNS = ["seed", "selection", "clip_id", "subject", "dataset", "true", "pred"]
FILES = ("metrics.json", "per_subject.csv", "selected.parquet", "confusion.csv", "confusion.png")
RULE_LABELS = {"last": "last epoch", "oracle": "oracle: test-set best-Acc epoch",
               "release": "release rule: its Acc epoch"}
"""How a confusion panel names its rule; the oracle and release panels show the epochs their accuracy comes from
(the release label also names the network: :func:`rule_label`)."""


def rule_label(rule: str, network: str | None = None) -> str:
    """A confusion panel's (and confusion.csv's) name of ``rule``; the release rule names its network."""
    if rule == "release" and network is not None:
        return f"{network} release rule: its Acc epoch"
    return RULE_LABELS[rule]


def read_predictions(path: Path) -> tuple[pd.DataFrame, int, list[str]]:
    """Predictions, the class count (from ``prob_<k>`` columns) and class names; errors name file and field."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: predictions not found (run the method's train stage first)")
    try:
        preds = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ValueError(f"{path}: unreadable parquet ({err})") from None
    missing = [c for c in PRED_COLUMNS if c not in preds.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    k = sum(1 for c in preds.columns if c.startswith("prob_"))
    if k == 0 or any(f"prob_{j}" not in preds.columns for j in range(k)):
        raise ValueError(f"{path}: columns prob_0..prob_<K-1> missing or not contiguous")
    if preds.empty:
        raise ValueError(f"{path}: no predictions")
    preds = check_rows(preds, path, k, ("seed", "fold", "epoch", "true", "pred"), ("seed", "fold", "epoch", "clip_id"))
    folds_per_clip = preds.groupby(["seed", "clip_id"])["fold"].nunique()
    if (folds_per_clip > 1).any():
        seed, clip = folds_per_clip[folds_per_clip > 1].index[0]
        raise ValueError(f"{path}: clip {clip!r} is in more than one fold in seed {seed}")
    clips = preds.groupby("seed")["clip_id"].apply(frozenset)
    if clips.nunique() > 1:
        raise ValueError(f"{path}: seeds {clips.index.tolist()} do not predict the same clips")
    names = [f"class_{j}" for j in range(k)]
    if "label" in preds.columns:
        for t, name in preds[["true", "label"]].drop_duplicates().itertuples(index=False):
            names[int(t)] = str(name)
    preds = preds.sort_values(["seed", "fold", "epoch", "clip_id"], kind="stable").reset_index(drop=True)
    return preds, k, names


def read_curves(path: Path, seeds: list[int]) -> pd.DataFrame:
    """The seed mean per epoch of ``curves.csv`` (train loss and accuracy, pooled test accuracy)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: training curves not found (run the method's train stage first)")
    try:
        curves = pd.read_csv(path)
    except Exception as err:
        raise ValueError(f"{path}: unreadable csv ({err})") from None
    missing = [c for c in CURVE_COLUMNS if c not in curves.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    found = sorted(int(s) for s in curves["seed"].unique())
    if found != sorted(seeds):
        raise ValueError(f"{path}: curves of seeds {found}, predictions of seeds {sorted(seeds)}")
    return curves.groupby("epoch", sort=True)[list(CURVE_COLUMNS[2:])].mean().reset_index()


def _scores(chosen: pd.DataFrame, k: int, names: list[str], datasets: list[str]) -> dict[str, Any]:
    """One seed's figures under one selection: Acc, UF1, UAR over every class, per class, per source."""
    t, p = chosen["true"].to_numpy(), chosen["pred"].to_numpy()
    out: dict[str, Any] = {**metrics.summary(t, p, k), "per_class": metrics.per_class(t, p, names)}
    if len(datasets) > 1:
        out["per_dataset"] = {}
        for ds in datasets:
            part = chosen[chosen["dataset"] == ds]
            if part.empty:  # every subject of the source dropped by a release rule: no figure, not a NaN
                out["per_dataset"][ds] = {**{m: None for m in metrics.METRICS}, "n": 0}
                continue
            cm = metrics.confusion(part["true"].to_numpy(), part["pred"].to_numpy(), k)
            scores = metrics.part_from_confusion(cm)
            out["per_dataset"][ds] = {**{m: float(v) for m, v in scores.items()}, "n": int(len(part))}
    return out


def per_subject(selected: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per (seed, selection, test subject): clip count, Acc, UF1 and UAR of that subject's clips."""
    keys = ["seed", "selection", "dataset", "subject"]
    order = {name: i for i, name in enumerate(n for names in selection.SELECTIONS.values() for n in names)}
    sel = selected.assign(_order=selected["selection"].map(order))
    group_keys = ["seed", "_order", "dataset", "subject"]
    ids = sel.groupby(group_keys, sort=True).ngroup().to_numpy()
    table = sel.groupby(group_keys, sort=True).agg(n=("clip_id", "size")).reset_index()
    table["selection"] = table["_order"].map({i: name for name, i in order.items()})
    cms = metrics.confusions(ids, sel["true"].to_numpy(), sel["pred"].to_numpy(), len(table), k)
    for name, values in metrics.part_from_confusion(cms).items():
        table[name] = values
    return table[[*keys, "n", *metrics.METRICS]]


def _confusion_panels(
    selected: pd.DataFrame, rules: list[str], title: str, names: list[str], k: int, network: str | None = None
) -> tuple[pd.DataFrame, list[tuple[str, np.ndarray]]]:
    """The confusion csv's rows and the PNG's panels: per seed and rule, the rows its accuracy comes from."""
    rows, panels = [], []
    for seed, runs in selected.groupby("seed", sort=True):
        for rule in rules:
            part = runs[runs["selection"] == selection.source(rule, "accuracy")]
            label = rule_label(rule, network)
            rows.append(pd.DataFrame({
                "seed": seed,
                "rule": label,
                "actual": [names[t] for t in part["true"]],
                "predicted": [names[p] for p in part["pred"]],
            }))
            cm = metrics.confusion(part["true"].to_numpy(), part["pred"].to_numpy(), k)
            panels.append((f"{title}, seed {seed}\n{label}, n={len(part)}", cm))
    return pd.concat(rows, ignore_index=True), panels


def evaluate(
    preds: pd.DataFrame, k: int, names: list[str], rules: list[str], method: str, network: str | None = None
) -> tuple[dict[str, Any], pd.DataFrame]:
    """metrics.json's content (without curves) and the selected rows, from validated predictions; the ``release``
    rule applies ``network``'s release's selection."""
    seeds = sorted(int(s) for s in preds["seed"].unique())
    datasets = sorted(preds["dataset"].unique())
    release = None
    if "release" in rules:
        if network is None:
            raise ValueError("eval.rules has 'release': evaluating it needs the network whose release's selection "
                             "it applies (evaluate.run(..., network=...))")
        release = release_rules.release_rule(network)
    chosen = selection.select(preds, rules, network)
    for name, rows in chosen.items():
        empty = sorted(set(seeds) - set(rows["seed"].unique().tolist()))
        if empty:
            raise ValueError(f"selection {name} keeps no clip of seed {empty[0]} ({network}'s release drops every "
                             "subject it never gets right, and this seed got none right)")
    selected = pd.concat(
        [rows.assign(selection=name) for name, rows in chosen.items()], ignore_index=True
    )[SELECTED_COLUMNS]
    per_seed = []
    for seed in seeds:
        entry: dict[str, Any] = {"seed": seed}
        for name, rows in chosen.items():
            entry[name] = _scores(rows[rows["seed"] == seed], k, names, datasets)
        per_seed.append(entry)
    mean = {}
    for rule in rules:
        mean[rule] = {}
        for m in metrics.METRICS:
            spread = stats.Spread.of([s[selection.source(rule, m)][m] for s in per_seed])
            mean[rule][m] = {"mean": spread.mean, "std": spread.std}
    one_seed = preds[preds["seed"] == seeds[0]].drop_duplicates("clip_id")
    content: dict[str, Any] = {
        "method": method,
        "title": method_title(method),
        "classes": names,
        "datasets": datasets,
        "seeds": seeds,
        "rules": {rule: _rule_text(rule, release) for rule in rules},
        "n_clips": int(len(one_seed)),
        "n_subjects": int(one_seed[["dataset", "subject"]].drop_duplicates().shape[0]),
        "per_seed": per_seed,
        "mean": mean,
    }
    if release is not None:
        content["network"] = release.network
        content["release_rule"] = release.record()
    if len(datasets) > 1:
        content["per_dataset"] = {
            ds: {"n_clips": int((one_seed["dataset"] == ds).sum()),
                 "n_subjects": int(one_seed.loc[one_seed["dataset"] == ds, "subject"].nunique())}
            for ds in datasets
        }
    return content, selected


def _rule_text(rule: str, release: release_rules.ReleaseRule | None) -> str:
    if rule == "release" and release is not None:
        return f"{release.network}'s release ({release.release}, {release.where}): {release.description}"
    return selection.RULES[rule]


def run(
    params: EvalParams, method: str, train_dir: Path, out_dir: Path, network: str | None = None
) -> dict[str, Any]:
    """Evaluate ``train_dir``'s predictions.parquet and curves.csv into ``out_dir`` (built in a temp folder,
    renamed whole); returns metrics.json's content. ``network`` (an architecture's name, ``mixmeformer`` or
    ``vit``) is needed by the ``release`` rule only."""
    train_dir = Path(train_dir)
    preds, k, names = read_predictions(train_dir / "predictions.parquet")
    rules = list(dict.fromkeys(params.rules))
    content, selected = evaluate(preds, k, names, rules, method, network)
    curves = read_curves(train_dir / "curves.csv", content["seeds"])
    content["curves"] = {
        col: [None if pd.isna(v) else float(v) for v in curves[col]] if col != "epoch" else curves[col].tolist()
        for col in curves.columns
    }
    if params.keyframe_noise:  # only then: with no level, metrics.json keeps its bytes
        levels = list(params.keyframe_noise)
        path = train_dir / keyframe_noise.FILE
        noise = keyframe_noise.read(path, levels, k)
        content["keyframe_noise"] = keyframe_noise.section(
            selection.select_last(preds), noise, k, levels, params.keyframe_noise_seed, path)
    title = method_title(method)
    conf_rows, panels = _confusion_panels(selected, rules, title, names, k, content.get("network"))

    out_dir = Path(out_dir)
    with atomic.atomic_path(out_dir, owned=atomic.owned_if_holds(*FILES)) as tmp:
        tmp.mkdir()
        atomic.write_json(tmp / "metrics.json", content)
        (tmp / "per_subject.csv").write_text(
            per_subject(selected, k).to_csv(index=False, lineterminator="\n", float_format="%.6g")
        )
        atomic.write_parquet(tmp / "selected.parquet", selected)
        (tmp / "confusion.csv").write_text(conf_rows.to_csv(index=False, lineterminator="\n"))
        png = plots.confusion_grid_png(panels, names, f"{title}: pooled LOSO confusion per seed and rule", len(rules))
        (tmp / "confusion.png").write_bytes(png)
    return content
