"""The one-shot GPU check cannot rot: benchmarks/gpu_check.sh runs end to end on the CPU with a tiny model, in a
Python where pydantic (and pyarrow, dvc) cannot be imported, as on a bare GPU machine with only torch, timm, numpy
and pandas."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
METHODS = ("none", "memix", "mixaugment", "mixmeformer")

BARE_PYTHON = """#!/bin/sh
exec "{python}" -c 'import runpy, sys
for name in ("pydantic", "pyarrow", "dvc"):
    sys.modules[name] = None  # import raises ImportError
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$@"
"""

TINY = ["--device", "cpu", "--set", "model.name=vit_flow_tiny", "flow.size=16", "model.patch_size=4",
        "model.embed_dim=16", "model.depth=1", "model.num_heads=1", "train.batch_size=4", "train.threads=1",
        "--subjects", "3", "--clips", "12", "--fold-batch", "1", "3", "--compile-backend", "eager"]


def test_gpu_check_runs_on_the_cpu_without_pydantic(tmp_path: Path) -> None:
    python = tmp_path / "python"
    python.write_text(BARE_PYTHON.format(python=sys.executable))
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python)}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), *TINY], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "pretrained False" in out and "model vit_base_patch16_224" not in out  # the tiny override took effect
    for method in METHODS:
        for compile_mode in ("false", "reduce-overhead"):
            for group in (1, 3):
                row = re.search(rf"^\| {method} \| {group} \| {compile_mode} \| ([\d,]+) \|", out, re.MULTILINE)
                assert row, f"no row for {method} G={group} {compile_mode}:\n{out}"
                assert int(row.group(1).replace(",", "")) > 0
    assert out.count("paper protocol: 26 folds") == 2


def test_step_benchmark_runs(capsys) -> None:
    """benchmarks/bench_step.py (the op counts and optimizer traffic README quotes) runs on a tiny model."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import bench_step
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    bench_step.main(["--embed-dim", "16", "--depth", "1", "--size", "16", "--batch", "4", "--groups", "1", "3",
                     "--repeats", "1"])
    out = capsys.readouterr().out
    assert re.search(r"^\| fold-batched, G = 3 \| [\d,]+ \|", out, re.MULTILINE), out
    fused = re.search(r"^\| GroupedAdam, fused kernel \| [\d,]+ \| (\d+) \|", out, re.MULTILINE)
    torch_fused = re.search(r"^\| torch AdamW\(fused=True\), stacked \| [\d,]+ \| (\d+) \|", out, re.MULTILINE)
    assert fused and torch_fused, out
    assert int(fused.group(1)) <= 1.5 * int(torch_fused.group(1))  # the grouped update moves what torch's does
