"""The mixup comparison table: every method's pooled LOSO Acc and F1 over seeds, with deltas to the baseline.

Reads each (method, seed) ``metrics.json`` written by :mod:`memix.evaluation.evaluate` and writes
``mixup_table.md``, ``mixup_table.json`` and ``mixup_table.png``. Two tables, never mixed: the honest ``last``
rule and the ``oracle`` rule (per-subject best epoch chosen on the test subject, as published numbers were).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memix.config import CompareParams, method_title
from memix.io import atomic
from memix.plots import save_png

# Published CASME II 5-class LOSO figures (MEMix paper's README), obtained with test-set epoch selection.
PAPER_CASME2 = {
    "none": (73.98, 0.7200),
    "mixup": (82.11, 0.8145),
    "cutmix": (82.93, 0.8133),
    "manifold_mixup": (83.33, 0.8179),
    "transmix": (83.74, 0.8048),
    "remix": (82.52, 0.8186),
    "mixaugment": (83.33, 0.8254),
    "memix": (85.37, 0.8365),
}

RULES = {
    "last": "honest: each fold's final epoch",
    "oracle": "TEST-SET SELECTION: per subject the best epoch on the test subject (Acc and F1 chosen separately)",
}


@dataclass(frozen=True)
class Summary:
    """Mean and sample standard deviation over seeds (std 0 with one seed)."""

    mean: float
    std: float
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        n = len(values)
        mean = sum(values) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
        return cls(mean, std, tuple(values))


def _metric(metrics: dict[str, Any], rule: str, name: str, path: Path) -> float:
    try:
        if rule == "last":
            return float(metrics["last"][name])
        oracle = metrics["oracle_test_selection"]
        return float(oracle["best_acc_epoch" if name == "accuracy" else "best_f1_epoch"][name])
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: missing metric {rule}/{name} ({err})") from None


def collect(params: CompareParams, eval_root: Path) -> dict[str, dict[str, dict[str, Summary]]]:
    """{rule: {method: {"accuracy": Summary, "f1": Summary}}} over params.seeds, in params.methods order."""
    table: dict[str, dict[str, dict[str, Summary]]] = {rule: {} for rule in RULES}
    for method in params.methods:
        per_rule: dict[str, dict[str, list[float]]] = {rule: {"accuracy": [], "f1": []} for rule in RULES}
        for seed in params.seeds:
            path = Path(eval_root) / method / f"seed{seed}" / "metrics.json"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: no evaluation for method {method!r} seed {seed} (run its stages)")
            metrics = json.loads(path.read_text())
            for rule in RULES:
                for name in ("accuracy", "f1"):
                    per_rule[rule][name].append(_metric(metrics, rule, name, path))
        for rule in RULES:
            table[rule][method] = {name: Summary.of(vals) for name, vals in per_rule[rule].items()}
    return table


def within_spread(delta: float, a: Summary, b: Summary) -> bool:
    """True when the two mean +- std intervals overlap: the difference is not resolved by these seeds."""
    return abs(delta) <= a.std + b.std


def _cell(value: Summary, base: Summary | None, scale: float, digits: int) -> tuple[str, str]:
    """(mean with the delta to the baseline in the published format ``82.11(+8.13)``, the std column)."""
    text = f"{value.mean * scale:.{digits}f}"
    if base is not None:
        delta = value.mean - base.mean
        text += f"({delta * scale:+.{digits}f})" + (" ~" if within_spread(delta, value, base) else "")
    return text, f"±{value.std * scale:.{digits}f}"


def render_markdown(table: dict[str, dict[str, dict[str, Summary]]], params: CompareParams) -> str:
    seeds = ", ".join(str(s) for s in params.seeds)
    lines = [
        "# Mixup comparison (pooled LOSO)",
        "",
        f"Mean over seeds [{seeds}], in parentheses the difference to the baseline (`{params.baseline}`), and",
        "the sample standard deviation over seeds (0 with one seed). `~` marks a difference within the spread",
        "across seeds (the two mean ± std intervals overlap): these seeds do not tell the two methods apart.",
        "Acc in %, F1 = UF1 (mean over classes of 2TP/(2TP+FP+FN) on pooled counts).",
    ]
    for rule, title in (("last", "Honest rule: last epoch"), ("oracle", "Oracle rule (test-set selection)")):
        rows = table[rule]
        base = rows.get(params.baseline)
        lines += ["", f"## {title}", "", f"_{RULES[rule]}._", ""]
        lines += ["| method | Acc (%) | std | F1 | std |", "|---|---|---|---|---|"]
        for method, m in rows.items():
            ref = None if method == params.baseline or base is None else base
            acc, acc_sd = _cell(m["accuracy"], ref and ref["accuracy"], 100.0, 2)
            f1, f1_sd = _cell(m["f1"], ref and ref["f1"], 1.0, 4)
            lines.append(f"| {method_title(method)} | {acc} | {acc_sd} | {f1} | {f1_sd} |")
    lines += [
        "",
        "## Published reference (CASME II, 5 classes, ViT-B/16, oracle selection)",
        "",
        "Compare these with the oracle table only, and only on CASME II; the synthetic default is not CASME II.",
        "",
        "| method | Acc (%) | F1 |",
        "|---|---|---|",
    ]
    base_acc, base_f1 = PAPER_CASME2["none"]
    for method, (acc, f1) in PAPER_CASME2.items():
        if method == "none":
            lines.append(f"| {method_title(method)} | {acc:.2f} | {f1:.4f} |")
        else:
            lines.append(
                f"| {method_title(method)} | {acc:.2f}({acc - base_acc:+.2f}) | {f1:.4f}({f1 - base_f1:+.4f}) |"
            )
    return "\n".join(lines) + "\n"


def to_json(table: dict[str, dict[str, dict[str, Summary]]], params: CompareParams) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": list(params.seeds), "baseline": params.baseline, "rules": RULES}
    for rule, rows in table.items():
        base = rows.get(params.baseline)
        out[rule] = {}
        for method, m in rows.items():
            entry: dict[str, Any] = {}
            for name, s in m.items():
                item: dict[str, Any] = {"mean": s.mean, "std": s.std, "per_seed": list(s.values)}
                if base is not None and method != params.baseline:
                    delta = s.mean - base[name].mean
                    item["delta"] = delta
                    item["within_spread"] = within_spread(delta, s, base[name])
                entry[name] = item
            out[rule][method] = entry
    return out


def render_png(table: dict[str, dict[str, dict[str, Summary]]], path: Path) -> None:
    """Bar chart, Acc and F1 for both rules, error bars = std over seeds, dots = single seeds."""
    import numpy as np
    from matplotlib.figure import Figure

    methods = list(table["last"])
    names = [method_title(m) for m in methods]
    x = np.arange(len(methods))
    fig = Figure(figsize=(max(8, 1.1 * len(methods) + 3), 4.2), layout="constrained")  # no pyplot state
    axes = fig.subplots(1, 2)
    for ax, metric, scale, label in ((axes[0], "accuracy", 100.0, "Acc (%)"), (axes[1], "f1", 1.0, "F1 (UF1)")):
        for offset, rule, colour in ((-0.2, "last", "#3b75af"), (0.2, "oracle", "#c44e52")):
            s = [table[rule][m][metric] for m in methods]
            ax.bar(x + offset, [v.mean * scale for v in s], 0.38, yerr=[v.std * scale for v in s],
                   color=colour, alpha=0.85, capsize=3, label=rule if rule == "last" else "oracle (test-set selection)")
            for i, v in enumerate(s):
                ax.plot([x[i] + offset] * len(v.values), [w * scale for w in v.values], "k.", ms=3)
        ax.set_xticks(x, names, rotation=35, ha="right")
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Pooled LOSO results per mixing method (mean ± std over seeds)")
    save_png(fig, path, dpi=110)


def run(params: CompareParams, eval_root: Path, out_dir: Path) -> dict[str, Any]:
    """Write mixup_table.{md,json,png} into ``out_dir`` and return the JSON content."""
    if params.baseline not in params.methods:
        raise ValueError(f"compare.baseline {params.baseline!r} is not in compare.methods {list(params.methods)}")
    table = collect(params, Path(eval_root))
    out_dir = Path(out_dir)
    content = to_json(table, params)
    atomic.write_text(out_dir / "mixup_table.md", render_markdown(table, params))
    atomic.write_json(out_dir / "mixup_table.json", content)
    render_png(table, out_dir / "mixup_table.png")
    return content
