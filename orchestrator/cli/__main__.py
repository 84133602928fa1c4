"""``python -m orchestrator.cli``: the ``latm`` command without the console script."""

from orchestrator.cli import main

main()
