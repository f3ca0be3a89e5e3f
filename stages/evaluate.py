"""DVC stage `evaluate`: pooled metrics of one (method, seed) -> reports/eval/<method>/seed<N>.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
