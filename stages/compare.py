"""DVC stage `compare`: the mixup comparison table -> reports/mixup_table.*.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["compare", *sys.argv[1:]]))
