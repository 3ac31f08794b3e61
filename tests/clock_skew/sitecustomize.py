"""Shift this process's clock by DETENTE_TEST_CLOCK_SKEW seconds: a node whose clock is wrong, for tests.

Put on PYTHONPATH of one node process only (`support.NodeProc.start(clock_skew=...)`); the
machine's clock and every other process are left alone.
"""

from __future__ import annotations

import datetime as _datetime
import os
import time

_SKEW = float(os.environ.get("DETENTE_TEST_CLOCK_SKEW", "0"))

if _SKEW:
    _time, _time_ns, _Datetime = time.time, time.time_ns, _datetime.datetime

    def _shifted() -> float:
        return _time() + _SKEW

    def _shifted_ns() -> int:
        return _time_ns() + int(_SKEW * 1e9)

    class _SkewedDatetime(_Datetime):
        @classmethod
        def now(cls, tz: _datetime.tzinfo | None = None) -> _SkewedDatetime:
            return _Datetime.now(tz) + _datetime.timedelta(seconds=_SKEW)  # type: ignore[return-value]

    time.time = _shifted
    time.time_ns = _shifted_ns
    _datetime.datetime = _SkewedDatetime  # type: ignore[misc]
