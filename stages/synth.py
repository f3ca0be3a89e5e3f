"""DVC stage `synth`: generate the synthetic CASME II-shaped dataset into data/raw/synthetic.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
