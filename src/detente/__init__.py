"""Détente: a verifiable hotline for states in crisis.

Each state runs its own node (`detente serve`); nodes federate under a ratified agreement and
trust only signatures and proofs. The package is layered: `core` (pure rules and formats) under
`store` (SQLAlchemy tables), `node` (use cases), and `web` / `cli` (the edges).
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
