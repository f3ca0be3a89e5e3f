"""The mixup comparison: every method's pooled LOSO Acc, UF1 and UAR over seeds, differences to the baseline with
paired bootstrap intervals, provenance, and the files DVC shows.

Reads each method's ``reports/eval/<m>/`` (``metrics.json``, ``selected.parquet``) and writes into ``reports/``:

- ``mixup_table.md`` / ``.json`` / ``.png``: the table, two rules never mixed (the honest ``last`` rule and the
  ``oracle`` rule, per subject the best epoch chosen on the test subject, as published numbers were); with
  ``eval.keyframe_noise`` levels the last-epoch table also has a "UF1 at ±n frames" column per level (the same
  models on test clips with shifted onset and apex; :mod:`~memix.evaluation.keyframe_noise`);
- ``summary.json``: a flat DVC metric, per method the seed mean of Acc, UF1 and UAR under each rule, rounded,
  so ``dvc exp show`` and ``dvc metrics diff`` give one short row per experiment;
- ``curves.csv``: per method and epoch the seed mean of its training curves (long format, one ``method``
  column), which the top-level ``plots`` of ``dvc.yaml`` overlay in one chart.

The numbers come from :mod:`~memix.evaluation.comparison`, what they were computed on from
:mod:`~memix.evaluation.provenance`, and their rendering from :mod:`~memix.evaluation.table_render`.

Provenance holds only what DVC tracks as this stage's inputs (params, the ingest report, the evaluations), so
equal inputs give equal bytes. The git revision is left out on purpose: written into a cached output it would
change the table on every commit while no input changed, and no commit can hold its own hash; the commit that
holds this table's ``dvc.lock`` identifies the code, and ``dvc.lock`` pins the md5 of every file each stage ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from memix.config import Params, method_title
from memix.evaluation import keyframe_noise
from memix.evaluation.comparison import MethodEval, compare, load
from memix.evaluation.provenance import provenance
from memix.evaluation.table_render import render_markdown, render_png, summary, to_json
from memix.io import atomic

CURVES = ("test_accuracy", "train_loss", "train_accuracy")


def curves_table(evals: dict[str, MethodEval]) -> pd.DataFrame:
    """Long format: method (display name), epoch and each seed-mean curve, in method then epoch order."""
    frames = []
    for method, ev in evals.items():
        curves = ev.content.get("curves")
        if not curves or "epoch" not in curves:
            raise ValueError(f"{ev.path}: no training curves (rerun its evaluate stage)")
        frame = pd.DataFrame({"method": method_title(method), "epoch": curves["epoch"]})
        for col in CURVES:
            frame[col] = pd.array(curves.get(col, [None] * len(frame)), dtype="Float64")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


OUTPUT_FILES = ("mixup_table.md", "mixup_table.json", "mixup_table.png", "summary.json", "curves.csv")


def run(params: Params, eval_root: Path, out_dir: Path, ingest_report: Path | None = None) -> dict[str, Any]:
    """Write mixup_table.{md,json,png}, summary.json and curves.csv into ``out_dir``; return the table's JSON."""
    cp = params.compare
    evals = {m: load(m, Path(eval_root), list(cp.seeds)) for m in cp.methods}
    table = compare(params, evals)
    base = evals[cp.baseline]
    prov = provenance(params, base, ingest_report)
    train_acc = {m: ev.last_train_accuracy() for m, ev in evals.items()}
    levels = list(params.eval.keyframe_noise)
    noise = {m: keyframe_noise.spreads(ev.content, levels, ev.path) for m, ev in evals.items()} if levels else {}
    content = to_json(table, params, base, prov, train_acc, noise)
    curves = curves_table(evals)
    out_dir = Path(out_dir)
    # all or none: a failure while writing one (a full disk) renames none of them into place
    with atomic.atomic_paths(*(out_dir / name for name in OUTPUT_FILES)) as (md, js, png, summ, csv):
        atomic.write_text(md, render_markdown(table, params, base, prov, train_acc, noise))
        atomic.write_json(js, content)
        render_png(table, cp.baseline, png)
        atomic.write_text(summ, json.dumps(summary(table, noise), indent=2) + "\n")
        atomic.write_text(csv, curves.to_csv(index=False, lineterminator="\n", float_format="%.6g"))
    return content


def headline(content: dict[str, Any]) -> str:
    """One line: the best method by last-rule Acc (its Δ and whether it is significant) and the baseline."""
    rule = "last" if "last" in content else next(r for r in content["rules"])
    rows = content[rule]
    base = content["baseline"]
    best = max(rows, key=lambda m: (rows[m]["accuracy"]["mean"], rows[m]["uf1"]["mean"]))

    def figures(method: str) -> str:
        r = rows[method]
        return f"Acc {r['accuracy']['mean'] * 100:.2f} % UF1 {r['uf1']['mean']:.4f} UAR {r['uar']['mean']:.4f}"

    n = len(content["seeds"])
    text = f"compare ({rule} epoch, {n} seed{'s' if n != 1 else ''}): best {content['titles'][best]} {figures(best)}"
    if best == base:
        return text + " (the baseline)"
    acc = rows[best]["accuracy"]
    sig = "significant" if acc["significant"] else "not significant"
    low, high = acc["ci95"]
    text += f" (ΔAcc {acc['delta'] * 100:+.2f}, 95 % CI [{low * 100:+.2f}, {high * 100:+.2f}], {sig})"
    return text + f"; baseline {content['titles'][base]} {figures(base)}"
