"""``python -m bridge`` runs the same entry point as the ``eufy-bridge`` command."""

from bridge.cli import main

raise SystemExit(main())
