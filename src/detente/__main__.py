"""`python -m detente` runs the command line."""

from __future__ import annotations

from detente.cli import main

main()
