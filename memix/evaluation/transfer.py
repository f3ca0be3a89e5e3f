"""The cross-dataset table: each protocol's folds (train -> test) scored at their last epoch, beside the
composite's LOSO of the same methods (MEGC 2018's composite database evaluation, CDE).

Why ``last`` only: a cross-dataset fold tests on a whole dataset, not on one subject, so there is no held-out
subject to pick an epoch on; choosing the epoch on the test dataset itself would be test-set selection over the
whole table. The ``oracle`` rule is therefore not computed here; the CDE rows keep every rule the LOSO
evaluation reports (``eval.rules``), each named.

Metrics: Acc, UF1 and UAR of each fold's test clips (MEGC 2018 reported UAR for HDE and F1 for CDE, MEB Tables
10-11 both), per seed, then mean and standard deviation over seeds. A test dataset need not hold every class of
the label set (SAMM has few objective class III clips; a source may have none), so UAR averages over the classes
in the test clips' truth and UF1 over the classes in their truth or predictions
(:func:`memix.evaluation.metrics.part_from_confusion`, as for one source of a composite); with every class
present both are the usual all-class figures. ``leave_one_dataset_out`` adds a pooled row: every fold's
test clips together (each clip is tested once).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memix.config import method_title
from memix.evaluation import metrics, selection, stats
from memix.training.folds import ARROW, PLUS

TITLES = {
    "holdout_database": "Holdout-database evaluation (MEGC 2018 HDE)",
    "leave_one_dataset_out": "Leave-one-dataset-out evaluation",
}
POOLED = "pooled"


def _read(run_dir: Path) -> tuple[pd.DataFrame, dict[int, str], int, list[str]]:
    """Last-epoch predictions of one run, its fold names (from history.parquet), class count and names."""
    pred_path, hist_path = run_dir / "predictions.parquet", run_dir / "history.parquet"
    for path in (pred_path, hist_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (run the transfer stage of this protocol and method first)")
    preds = pd.read_parquet(pred_path)
    history = pd.read_parquet(hist_path, columns=["fold", "subject"])
    missing = [c for c in ("seed", "fold", "epoch", "clip_id", "dataset", "true", "pred", "label")
               if c not in preds.columns]
    if missing:
        raise ValueError(f"{pred_path}: missing column(s) {', '.join(missing)}")
    if preds.empty:
        raise ValueError(f"{pred_path}: no predictions")
    k = sum(1 for c in preds.columns if c.startswith("prob_"))
    names = [f"class_{j}" for j in range(k)]
    for t, name in preds[["true", "label"]].drop_duplicates().itertuples(index=False):
        names[int(t)] = str(name)
    last = preds.groupby(["seed", "fold"])["epoch"].transform("max")
    chosen = preds[preds["epoch"] == last].reset_index(drop=True)
    folds = {int(f): str(s) for f, s in history.drop_duplicates("fold").itertuples(index=False)}
    unnamed = sorted(set(chosen["fold"].astype(int)) - set(folds))
    if unnamed:
        raise ValueError(f"{hist_path}: no history for fold(s) {unnamed} of {pred_path}")
    return chosen, folds, k, names


def _split(name: str) -> tuple[str, str]:
    """(train side, test side) of a fold from its name (``casme2->samm``, ``casme2+smic->samm``), as printed."""
    train, test = name.split(ARROW)
    return train.replace(PLUS, " + "), test


def _stats(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation over seeds (:class:`memix.evaluation.stats.Spread`), as JSON."""
    spread = stats.Spread.of(values)
    return {"mean": spread.mean, "std": spread.std}


def _row(part: pd.DataFrame, k: int, seeds: list[int]) -> dict[str, Any]:
    per_seed = {}
    for seed in seeds:
        rows = part[part["seed"] == seed]
        cm = metrics.confusion(rows["true"].to_numpy(), rows["pred"].to_numpy(), k)
        per_seed[str(seed)] = {m: float(v) for m, v in metrics.part_from_confusion(cm).items()}
    n = int(part[part["seed"] == seeds[0]]["clip_id"].nunique())
    return {"n_clips": n, "per_seed": per_seed,
            **{m: _stats([per_seed[str(s)][m] for s in seeds]) for m in metrics.METRICS}}


def method_rows(protocol: str, run_dir: Path, seeds: list[int]) -> dict[str, Any]:
    """The protocol's rows of one method: one per fold (and the pooled row of leave-one-dataset-out)."""
    chosen, folds, k, names = _read(run_dir)
    found = sorted(int(s) for s in chosen["seed"].unique())
    if found != sorted(seeds):
        raise ValueError(f"{run_dir / 'predictions.parquet'}: seeds {found}, compare.seeds is {sorted(seeds)}")
    rows = []
    for fold, name in sorted(folds.items()):
        train, test = _split(name)
        rows.append({"fold": fold, "train": train, "test": test,
                     **_row(chosen[chosen["fold"] == fold], k, seeds)})
    if protocol == "leave_one_dataset_out":
        rows.append({"fold": None, "train": "all but the test dataset", "test": POOLED, **_row(chosen, k, seeds)})
    return {"classes": names, "rows": rows}


def cde_rows(metrics_path: Path) -> list[dict[str, Any]]:
    """The composite's LOSO of a method, from its evaluation (reports/eval/<method>/metrics.json): one row per rule;
    none when that method was not evaluated under LOSO (not in compare.methods)."""
    if not metrics_path.is_file():
        return []
    data = json.loads(metrics_path.read_text(encoding="utf-8"))
    rows = []
    for rule in data["mean"]:
        rows.append({"rule": rule, "rule_text": data["rules"].get(rule, rule), "test": "all",
                     "n_clips": int(data["n_clips"]), **{m: dict(data["mean"][rule][m]) for m in metrics.METRICS}})
        datasets = list(data.get("datasets", []))
        for ds in datasets if len(datasets) > 1 else []:  # each source's clips of the same LOSO run
            scores = {m: [s[selection.source(rule, m)]["per_dataset"][ds][m] for s in data["per_seed"]]
                      for m in metrics.METRICS}
            counts = [s[selection.source(rule, "accuracy")]["per_dataset"][ds]["n"] for s in data["per_seed"]]
            rows.append({"rule": rule, "rule_text": data["rules"].get(rule, rule), "test": ds,
                         "n_clips": int(max(counts)),
                         **{m: _stats([v for v in values if v is not None]) if any(v is not None for v in values)
                            else None for m, values in scores.items()}})
    return rows


def build(
    protocol: str, transfer_root: Path, eval_root: Path, methods: list[str], seeds: list[int],
    loso_methods: list[str] | None = None,
) -> dict[str, Any]:
    """The table's content for ``protocol``: per method its fold rows and, when it is one of ``loso_methods``
    (``compare.methods``: an evaluation left over from a method no longer compared is not read), its CDE rows."""
    if protocol not in TITLES:
        raise ValueError(f"unknown cross-dataset protocol {protocol!r}; valid: {', '.join(TITLES)}")
    out: dict[str, Any] = {"protocol": protocol, "title": TITLES[protocol], "seeds": list(seeds),
                           "rule": "last (no held-out subject to select an epoch on)", "methods": {}}
    for method in methods:
        rows = method_rows(protocol, transfer_root / protocol / method, seeds)
        loso = loso_methods is None or method in loso_methods
        out["methods"][method] = {**rows, "cde": cde_rows(eval_root / method / "metrics.json") if loso else []}
    return out


def _cell(stat: dict[str, float] | None) -> str:
    if not stat or stat.get("mean") is None or not math.isfinite(stat["mean"]):
        return "n/a"
    return f"{stat['mean'] * 100:.2f} ± {stat['std'] * 100:.2f}"


def render_markdown(table: dict[str, Any]) -> str:
    """MEB's layout: rows train -> test, columns UF1 / UAR / Acc (percent, mean ± sd over seeds); then CDE."""
    seeds = table["seeds"]
    lines = [
        f"# {table['title']}",
        "",
        f"Each fold's model scored at its last epoch on every clip of its test side; mean ± sd over seeds {seeds}, "
        "in percent. UAR averages over the classes the test side holds, UF1 over those it holds or predicts. The "
        "epoch is not selected on the test data: a cross-dataset fold has no held-out subject to select on, so the "
        "oracle rule does not apply here.",
        "",
        "| method | train | test | clips | UF1 | UAR | Acc |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for method, entry in table["methods"].items():
        for row in entry["rows"]:
            lines.append(f"| {method_title(method)} | {row['train']} | {row['test']} | {row['n_clips']} | "
                         f"{_cell(row['uf1'])} | {_cell(row['uar'])} | {_cell(row['accuracy'])} |")
    cde = [(m, r) for m, e in table["methods"].items() for r in e["cde"]]
    lines += ["", "## Composite database evaluation (CDE): LOSO over the merged subjects", "",
              "Test `all`: every LOSO fold's clips pooled; a source's row: its clips in the same run (UAR and UF1 "
              "over the classes it holds).", ""]
    if not cde:
        lines.append("No method of transfer.methods is in compare.methods: no LOSO run of the composite to show.")
    else:
        lines += ["| method | rule | test | clips | UF1 | UAR | Acc |", "|---|---|---|---:|---:|---:|---:|"]
        for method, row in cde:
            lines.append(f"| {method_title(method)} | {row['rule']} | {row['test']} | {row['n_clips']} | "
                         f"{_cell(row['uf1'])} | {_cell(row['uar'])} | {_cell(row['accuracy'])} |")
        rules = dict.fromkeys((r["rule"], r["rule_text"]) for _, r in cde)
        lines += ["", *[f"- `{rule}`: {text}" for rule, text in rules]]
    return "\n".join(lines) + "\n"


def run(protocol: str, transfer_root: Path, eval_root: Path, methods: list[str], seeds: list[int],
        out_dir: Path, loso_methods: list[str] | None = None) -> dict[str, Any]:
    """Build the table and write ``<out_dir>/<protocol>.md`` and ``.json``, each atomically."""
    from memix.io import atomic

    table = build(protocol, transfer_root, eval_root, methods, seeds, loso_methods)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic.atomic_paths(out_dir / f"{protocol}.md", out_dir / f"{protocol}.json") as (md, js):
        md.write_text(render_markdown(table), encoding="utf-8")
        js.write_bytes(atomic.json_bytes(table))
    return table


def headline(table: dict[str, Any]) -> str:
    """One log line: each method's mean UAR over the protocol's folds (pooled row aside)."""
    parts = []
    for method, entry in table["methods"].items():
        folds = [r for r in entry["rows"] if r["fold"] is not None]
        uar = float(np.mean([r["uar"]["mean"] for r in folds]))
        parts.append(f"{method} UAR {uar * 100:.1f} %")
    return f"{table['title']}: " + ", ".join(parts) + " (mean over folds, last epoch)"
