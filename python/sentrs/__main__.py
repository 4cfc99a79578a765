"""``python -m sentrs``: the command line."""

from sentrs.cli import main

raise SystemExit(main())
