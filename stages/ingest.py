"""DVC stage `ingest`: coding sheet + frames -> data/interim/clips.parquet.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", *sys.argv[1:]]))
