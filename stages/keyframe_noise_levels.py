"""DVC stage `keyframe_noise_levels`: the key-frame noise levels and their seed -> data/processed/keyframe_noise/
levels.json.

The train stage depends on the folder data/processed/keyframe_noise, which holds every keyframe_noise@<n> output; this
small file lives there too, so the folder exists (and training can run) with no level configured. A level taken out
of eval.keyframe_noise leaves its flow set behind; this stage removes it (and so does the train stage, for when DVC
restores this one from its run cache: memix/io/noise_sets.py), so the folder holds the configured levels only."""

from __future__ import annotations

import logging
import sys

import _common

from memix.config import load_params
from memix.io import atomic, noise_sets, paths

log = logging.getLogger("memix.stages.keyframe_noise_levels")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("keyframe_noise_levels", "Write eval.keyframe_noise's levels and seed (what training reads).")
    args = p.parse_args(argv)

    def body() -> None:
        params = load_params(args.params)
        out = paths.KEYFRAME_NOISE_LEVELS
        atomic.remove_stale_temps(out)
        levels, seed = params.eval.keyframe_noise, params.eval.keyframe_noise_seed
        removed = noise_sets.remove_unlisted(paths.KEYFRAME_NOISE, levels)
        atomic.write_json(out, noise_sets.levels_record(levels, seed))
        gone = f"; removed the sets of level(s) no longer listed: {removed}" if removed else ""
        log.info("keyframe_noise_levels: level(s) %s, seed %d -> %s%s", levels or "none", seed, out, gone)

    return _common.run("keyframe_noise_levels", body)


if __name__ == "__main__":
    sys.exit(main())
