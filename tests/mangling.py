"""Go-style mangling of valid inputs, shared by the key, note and checkpoint tests."""

from __future__ import annotations

from collections.abc import Iterator


def mangled(data: bytes) -> Iterator[bytes]:
    """Yield every proper substring of `data` and every single-byte +1 (mod 256) change of it."""
    n = len(data)
    yield b""
    for i in range(n):
        for j in range(i + 1, n + 1):
            if j - i < n:
                yield data[i:j]
    for i in range(n):
        yield data[:i] + bytes([(data[i] + 1) % 256]) + data[i + 1 :]
