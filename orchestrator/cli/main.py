"""``python -m orchestrator.cli.main``: the ``latm`` command without the console script."""

from orchestrator.cli import main

if __name__ == "__main__":
    main()
