"""``python -m mlspec.runtime STEP --spec SPEC --in NAME=PATH ... --out NAME=PATH ...``."""

import sys

from mlspec.runtime.cli import main

if __name__ == "__main__":
    sys.exit(main())
