"""DVC stage `faces`: aligned onset/apex face crops -> data/processed/faces.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["faces", *sys.argv[1:]]))
