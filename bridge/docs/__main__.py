"""``python -m bridge.docs [README.md]``: rewrite the README's generated sections in place."""

import sys
from pathlib import Path

from bridge import logs
from bridge.docs import render

logs.configure("warn", "console")  # the demo house started for the tables need not chatter
path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
