"""DVC stage `train`: LOSO training of one (method, seed) -> data/train/<method>/seed<N>.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
