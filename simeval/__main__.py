"""``python -m simeval COMMAND [ARGS]``: the same as the ``simeval`` console command."""

from simeval.cli import main

raise SystemExit(main())
