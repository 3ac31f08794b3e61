"""`python -m detente` runs the command line."""

from __future__ import annotations

from detente.cli import main

# Guarded: worker processes of `detente audit` (spawned) import the main module again.
if __name__ == "__main__":
    main()
