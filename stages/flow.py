"""DVC stage `flow`: onset->apex flow shards -> data/processed/flow.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["flow", *sys.argv[1:]]))
