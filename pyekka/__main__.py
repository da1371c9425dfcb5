"""``python -m pyekka`` runs the command line."""

from pyekka.cli import main

raise SystemExit(main())
