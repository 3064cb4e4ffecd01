"""``python -m aligngoals``: the same CLI as the ``aligngoals`` command (for scripts that call the running Python)."""

from aligngoals.cli.main import main

if __name__ == "__main__":
    main()
