"""DVC stage `code`: one listing per stage of the files it runs -> data/code/<stage>[-<method>].txt.

Every other stage depends on its own listing (path and sha256 of each file of its import closure, see
:mod:`memix.codehash`) rather than on each module it imports, so a no-op ``dvc repro`` checks one small file
per stage instead of dozens, and a code change still reruns exactly the stages that run the changed file: this
stage reruns on any change under ``memix/`` or ``stages/``, and only the listings that differ move on.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import _common

from memix import codehash
from memix.config import MIXING_METHODS
from memix.io import atomic, paths

log = logging.getLogger("memix.stages.code")


def main(argv: list[str] | None = None) -> int:
    p = _common.parser("code", "List, per stage, the code files it runs with their sha256 (what DVC hashes).")
    p.add_argument("--out", default=str(paths.CODE), help="output folder (default: %(default)s)")
    args = p.parse_args(argv)

    def body() -> None:
        out = Path(args.out)
        atomic.remove_stale_temps(out)
        listings = codehash.stage_listings(MIXING_METHODS)
        with atomic.atomic_path(out, owned=atomic.owned_if_holds(codehash.listing_name("check_params"))) as tmp:
            tmp.mkdir()
            for name, text in listings.items():
                (tmp / name).write_text(text, encoding="utf-8")
        files = {line.split()[-1] for text in listings.values() for line in text.splitlines() if line.strip()}
        log.info("code: %d stage listings of %d files -> %s", len(listings), len(files), out)

    return _common.run("code", body)


if __name__ == "__main__":
    sys.exit(main())
