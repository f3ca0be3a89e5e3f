"""DVC stage `arch_runs`: the architecture comparison's run list -> data/arch/runs.json.

The models table depends on the folder data/arch, which holds every arch@<run> output; this small index lives there
too, so the folder exists (and the table stage can run) even when no run is configured."""

from __future__ import annotations

import logging
import sys

import _common

from memix.config import load_params
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.arch_runs")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("arch_runs", "Write the names and settings of architectures.runs (the table's index).")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = paths.ARCH / "runs.json"
        atomic.remove_stale_temps(out)
        atomic.write_json(out, params.architectures.model_dump(mode="json"))
        runs = params.architectures.runs
        log.info("arch_runs: %d run(s)%s -> %s", len(runs), f" ({', '.join(runs)})" if runs else "", out)

    return _common.run("arch_runs", body)


if __name__ == "__main__":
    sys.exit(main())
