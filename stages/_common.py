"""What every stage script shares; each imports it first.

- ``import memix`` must load THIS checkout's code (the one DVC hashed as the stage's deps), not whatever copy
  the virtual environment's editable install points at: ``dvc exp run --temp`` and queued experiments run
  stages in temporary copies of the project. So the checkout's root goes first on ``sys.path``.
- The same numeric code paths on every x86-64 machine: numpy, OpenCV, PyTorch, MKL and oneDNN pick SIMD kernels
  by the CPU they find, and an AVX-512 kernel sums in another order than an AVX2 one, so the same inputs would give
  other bytes (other DVC hashes) on another CPU. Before any of them loads, :func:`pin_cpu_code_paths` caps them at
  AVX2 (set by hand to override; ``MEMIX_NATIVE_CPU=1`` leaves the choice to the libraries).
- The ``--params`` option, and failures as one line naming the stage (``MEMIX_DEBUG=1`` for a traceback).
- ``-v/--verbose`` and ``-q/--quiet``: the parser remembers them and :func:`run` configures logging
  (:func:`memix.log.configure`) before the stage's body runs, so stage scripts need no code of their own for it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

AVX2_CAPS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels
    "MKL_CBWR": "AVX2",  # MKL (matrix products): conditional numerical reproducibility at the AVX2 code path
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (convolutions)
}
AVX512_OFF = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # numpy's dispatched AVX-512 loops
}
OPENCV_ABOVE_AVX2 = (
    ("AVX512-SKX", ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")),
    ("AVX512-CLX", ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni")),
    ("AVX_VNNI", ("avx_vnni",)),
)
"""OpenCV's dispatched kernels above AVX2, by the names its runtime knows (``AVX512-SKX``, with a hyphen: the
build's ``AVX512_SKX`` spelling is unknown to it and only makes it print a warning), with the CPU flags each needs.
Only those the CPU has are disabled, as OpenCV also warns about disabling a feature the CPU lacks."""


def pin_cpu_code_paths(cpuinfo: str | None = None) -> dict[str, str]:
    """Cap the numeric libraries at AVX2 on an x86-64 CPU that has it (see the module docstring); returns what it
    set. The switches above AVX2 are set only for features the CPU has, by names the libraries know, so that
    none of them prints a warning."""
    if os.environ.get("MEMIX_NATIVE_CPU"):
        return {}
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return {}
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    wanted = dict(AVX2_CAPS) if "avx2" in flags else {}
    if "avx2" in flags and "avx512f" in flags:
        wanted.update(AVX512_OFF)
    opencv = [name for name, needs in OPENCV_ABOVE_AVX2 if "avx2" in flags and set(needs) <= set(flags)]
    if opencv:
        wanted["OPENCV_CPU_DISABLE"] = ",".join(opencv)
    chosen = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(chosen)
    return chosen


pin_cpu_code_paths()


_verbosity = 0  # set by the stage parser, read by run()


class _StageParser(argparse.ArgumentParser):
    """Remembers ``-v``/``-q`` as it parses, for :func:`run`."""

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        global _verbosity
        _verbosity = ns.verbose - ns.quiet
        return ns, rest


def parser(stage: str, description: str) -> argparse.ArgumentParser:
    """An argument parser for ``stages/<stage>.py`` with the shared ``--params``, ``--verbose`` and ``--quiet``."""
    p = _StageParser(prog=f"stages/{stage}.py", description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    loud = p.add_mutually_exclusive_group()
    loud.add_argument("-v", "--verbose", action="count", default=0, help="debug messages and MediaPipe's native log")
    loud.add_argument("-q", "--quiet", action="count", default=0, help="warnings and errors only")
    return p


def run(stage: str, body: Callable[[], None]) -> int:
    """Run the stage's body with logging set up; a known failure becomes one line on stderr and exit status 1."""
    from memix import log

    return log.run_reporting(f"stage {stage}", body, _verbosity)
