"""Axis limits and tick labels (``lossviz_widget._core.limits``)."""

import math

import numpy as np
import pytest

from lossviz_widget._core.limits import (
    clamp_to_data,
    date_tick_format,
    log_ticks,
    number_tick_format,
    tick_step,
    widen_to_min_span,
)


def d3_format(fmt: str, x: float) -> str:
    """What d3-format does with the two kinds of specifier number_tick_format returns
    (``,.Nf`` is Python's own; ``.N~s``: N significant digits, an SI prefix, trailing zeros trimmed)."""
    if fmt.endswith("f"):
        return format(x, fmt)
    if fmt.endswith("e"):  # ~ trims trailing zeros
        mantissa, exponent = format(x, fmt.replace("~", "")).split("e")
        mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
        return f"{mantissa}e{int(exponent)}"
    digits = int(fmt[1:].split("~")[0])
    if x == 0:
        return "0"
    x = float(f"{x:.{digits - 1}e}")  # rounded to the significant digits first, as d3 does
    k = max(-8, min(8, math.floor(math.log10(abs(x)) / 3)))
    mantissa = x / 10 ** (3 * k)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(mantissa))))
    text = f"{mantissa:.{decimals}f}"
    text = text.rstrip("0").rstrip(".") if "." in text else text
    return text + {0: "", 1: "k", 2: "M", 3: "G", 4: "T"}[k]


@pytest.mark.parametrize("lo,hi", [(0, 1e6), (499_996, 500_004), (12_000_000, 12_000_010), (0.0123, 0.0128),
                                   (0.9995, 1.0005), (0, 50), (1000, 5000), (-3.0, 2.0), (99_990, 100_010),
                                   (5.0405e-4, 5.0425e-4), (1e-5, 8e-4)])
def test_neighbouring_tick_labels_differ(lo, hi):
    fmt = number_tick_format(lo, hi)
    step = tick_step(hi - lo)  # the ticks d3 draws (the axis asks for TICKS of them)
    ticks = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
    labels = [d3_format(fmt, float(t)) for t in ticks]
    assert len(labels) >= 3
    assert len(set(labels)) == len(labels), (fmt, labels)


def test_large_numbers_read_as_si():
    fmt = number_tick_format(0, 1.2e6)
    assert [d3_format(fmt, v) for v in (0, 200_000, 1_000_000)] == ["0", "200k", "1M"]


def test_clamp_keeps_non_negative_data_above_zero_and_near_the_data():
    assert clamp_to_data(-0.1, 2.1, 0.01, 2.0) == (0.0, pytest.approx(2.0995))
    lo, hi = clamp_to_data(0.5, 1.05, 0.6, 0.99)  # ignore_outliers padding on accuracy
    assert lo == pytest.approx(0.6 - 0.0195) and hi == pytest.approx(0.99 + 0.0195)
    assert clamp_to_data(-5.0, 5.0, -1.0, 1.0) == (-1.1, 1.1)  # negative data keep their range
    lo, hi = clamp_to_data(1e-5, 10.0, 1e-3, 1.0, log=True)
    assert lo == pytest.approx(10 ** -3.15) and hi == pytest.approx(10**0.15)


def test_clamp_leaves_growth_room_only_where_asked_and_never_below_zero():
    # a side growing fast keeps the room asked for (a second of growth), the other side 5%
    assert clamp_to_data(-5.0, 5.0, 1.0, 2.0, room=(0.5, 0.0)) == (0.5, pytest.approx(2.05))
    assert clamp_to_data(-5.0, 5.0, 1.0, 2.0, room=(0.0, 0.3)) == (pytest.approx(0.95), pytest.approx(2.3))
    assert clamp_to_data(-5.0, 5.0, 0.2, 2.0, room=(1.0, 0.0))[0] == 0.0  # non-negative data: 0 at most
    assert clamp_to_data(0.9, 1.1, 1.0, 2.0, room=(0.5, 0.5)) == (0.9, 1.1)  # bounds inside stay as they are
    lo, hi = clamp_to_data(1e-9, 1e9, 1e-3, 1.0, log=True, room=(1.0, 0.0))  # decades on a log axis
    assert lo == pytest.approx(1e-4) and hi == pytest.approx(10**0.15)


def test_min_span_and_log_ticks_and_date_formats():
    assert widen_to_min_span(10.0, 11.0, 8.0) == (6.5, 14.5)
    assert widen_to_min_span(0.0, 100.0, 8.0) == (0.0, 100.0)
    np.testing.assert_array_equal(log_ticks(1, 1e6), 10.0 ** np.arange(7))
    np.testing.assert_allclose(log_ticks(0.01, 2), [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2])
    assert len(log_ticks(0.3, 0.8)) >= 2 and len(log_ticks(1e-30, 1e30)) <= 12
    assert log_ticks(0, 1).size == 0
    assert [date_tick_format(s) for s in (30, 3600, 7 * 86400)] == ["%H:%M:%S", "%H:%M", "%b %d %H:%M"]
