"""``python -m vgfast.reproduce``: the same as ``vgfast reproduce``."""
import sys

from .cli import main

sys.exit(main())
