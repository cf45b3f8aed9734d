"""``python -m rxagent``: the same as the ``rxagent`` command."""

from ._cli import main

raise SystemExit(main())
