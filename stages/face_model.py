"""DVC stage `face_model`: fetch and verify models/face_landmarker.task.

Thin by design: the CLI handler reads params.yaml and calls the library; arguments pass through.
"""

import sys

from memix.cli import main

if __name__ == "__main__":
    sys.exit(main(["face-model", *sys.argv[1:]]))
