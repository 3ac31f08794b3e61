"""The bench's floor for the machine's own tail: sizes, summaries and refusals (nothing about speed)."""

from __future__ import annotations

import pytest
from bench import jitter


def test_calibration_scales_the_rounds_with_the_work() -> None:
    short, long = jitter.calibrate(0.2), jitter.calibrate(2.0)
    assert short >= 1
    # Ten times the work takes more rounds; by how much depends on the machine's noise.
    assert long > short


def test_measure_returns_percentiles_of_the_calibrated_work() -> None:
    out = jitter.measure(0.1, 12)
    assert out["work_ms"] == 0.1 and out["n"] == 12 and out["rounds"] >= 1
    assert 0 < out["p50"] <= out["p95"] <= out["p99"] <= out["max"]
    assert out["stretch_p99"] == round(out["p99"] / out["p50"], 2)


@pytest.mark.parametrize("work_ms", [0, -1.0])
def test_work_that_takes_no_time_is_refused(work_ms: float) -> None:
    with pytest.raises(ValueError, match="must take some time"):
        jitter.calibrate(work_ms)
    with pytest.raises(ValueError, match="must take some time"):
        jitter.measure(work_ms, 10)


def test_too_few_samples_for_a_percentile_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 10 samples"):
        jitter.measure(0.1, 9)


def test_samples_within_fits_the_time_and_stays_in_bounds() -> None:
    # 3 ms of work + the 2 ms pause: 200 in one second.
    assert jitter.samples_within(3.0, 1.0, 1000) == 200
    assert jitter.samples_within(3.0, 1.0, 50) == 50
    assert jitter.samples_within(500.0, 1.0, 1000) == 10
