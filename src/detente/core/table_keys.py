"""Refusing a key an agreement's table does not know, with the key it was probably meant to be.

A misspelled key (`alternative` for `alternate`, `lead_time` for `lead_times`) must never be
ratified as if it were absent: both states would have signed something other than what they wrote.
Every table of the agreement, the vocabulary tables of `core.codebook` included, refuses it with the
same sentence, naming the table, each unknown key, the closest known key when one is close, and the
known keys.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable


def refusal(keys: Iterable[object], known: Collection[str], where: str, what: str = "key") -> str | None:
    """Return the refusal of the `keys` outside `known` in the table `where`, or None if there are none.

    `what` names a key in the sentence ("key", or "message type" for a table keyed by type).
    Raises nothing.
    """
    unknown = [str(key) for key in keys if key not in known]
    if not unknown:
        return None
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        named.append(f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key))
    plural = what if len(unknown) == 1 else f"{what}s"
    return f"{where}: unknown {plural} {', '.join(named)}; known {what}s: {', '.join(sorted(known))}"
