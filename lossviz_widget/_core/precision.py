"""When float32 is enough: the rule shared by the wire format and the smoothed cache.

float32 keeps ~7 significant digits for magnitudes between about 1e-38 and 3e38;
this rule asks for a margin (1e-30 .. 1e30) so that nothing drawn underflows to 0
or overflows to inf. The browser draws float32 y values where the rule holds
(``view._wire_y``), so a float32 cache of such values loses nothing that is drawn.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fits_float32"]

TINY, HUGE = 1e-30, 1e30


def fits_float32(a: np.ndarray, bounds: tuple[float, float] | None = None) -> bool:
    """True when every finite nonzero value of ``a`` has a magnitude within [1e-30, 1e30].

    Costs two reductions for the usual one-signed, all-finite data (none when the caller
    passes ``bounds``, the min and max of ``a`` it already has); more only for data with
    NaN/Inf or values of both signs.
    """
    if not len(a):
        return True
    lo, hi = bounds if bounds is not None else (float(a.min()), float(a.max()))
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN or +-inf present: judge the finite values
        a = a[np.isfinite(a)]
        if not len(a):
            return True
        lo, hi = float(a.min()), float(a.max())
    if max(-lo, hi) > HUGE:
        return False
    if lo > 0 or hi < 0:  # one sign: the smallest magnitude is an end of the range
        return min(abs(lo), abs(hi)) >= TINY
    mag = np.abs(a[a != 0])
    return not len(mag) or float(mag.min()) >= TINY
