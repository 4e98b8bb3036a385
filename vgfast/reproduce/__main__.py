"""``python -m vgfast.reproduce``: the same as ``vgfast reproduce``."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
