"""Turn what users pass to ``log()`` into plain floats, or reject it clearly.

Accepted: Python ``int``/``float``, NumPy scalars, 0-d and size-1 arrays, and
size-1 tensors of any framework that follows the array protocol (PyTorch, JAX,
TensorFlow, CuPy...).

Tensors that live on an accelerator are *not* converted here: ``float(t)`` on a
CUDA tensor waits for the device to finish all queued work, which would stall
the training loop on every ``log()`` call. They are returned as
:class:`DeferredValue` (detached, still on the device) and converted in batches
by :func:`resolve_deferred` at frame time, one device sync per frame.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, final

import numpy as np

__all__ = ["DeferredValue", "check_name", "coerce_array", "coerce_step", "coerce_value", "resolve_deferred"]


@final  # ``type(v) is DeferredValue`` checks (the hot path's) are then exact for mypy too
class DeferredValue:
    """A size-1 accelerator tensor whose host copy is fetched later, in a batch."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Any) -> None:
        self.tensor = tensor


def check_name(name: Any) -> str:
    """Metric names are non-empty strings that UTF-8 can encode (they may contain anything else;
    every view escapes them)."""
    if type(name) is not str:
        raise TypeError(f"metric names must be str, got {type(name).__name__} {name!r}")
    if not name:
        raise ValueError("metric name must not be empty")
    return check_encodable("metric", name)


def check_encodable(kind: str, name: str) -> str:
    """``name`` if UTF-8 can encode it; a lone surrogate (say, from a badly decoded file name) would
    break every file and export later, so it is refused now, naming the character."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{kind} name {name!r} cannot be encoded as UTF-8 (character {name[exc.start]!r} at position "
            f"{exc.start} is a lone surrogate); pass a valid string"
        ) from None
    return name


def merge_metrics(metrics: Mapping[str, Any] | None, values: dict[str, Any]) -> Mapping[str, Any]:
    """One call's metrics, ``log(mapping, **keywords)``, as one mapping (names not yet checked)."""
    if metrics is None:
        merged: Mapping[str, Any] = values
    elif not isinstance(metrics, Mapping):
        raise TypeError(f"log() takes a mapping of metric values or keyword arguments, got {type(metrics).__name__}")
    elif values:
        clash = metrics.keys() & values.keys()
        if clash:
            raise ValueError(f"metric {sorted(clash)[0]!r} given both in the mapping and as a keyword")
        merged = {**metrics, **values}
    else:
        merged = metrics
    if not merged:
        raise TypeError("log() needs at least one metric, e.g. log(loss=0.5)")
    return merged


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reject_dtype(name: str, dtype: Any, value: Any) -> None:
    text = str(dtype).lower()
    if "bool" in text:
        raise TypeError(f"metric {name!r}: got a boolean {_describe(value)}; log a number (e.g. float(flag))")
    if "complex" in text or "str" in text or "object" in text:
        raise TypeError(f"metric {name!r}: unsupported dtype {dtype} in {_describe(value)}")


def _size_of(shape: Any) -> int:
    return math.prod(int(d) for d in shape)


def _on_cpu(tensor: Any) -> bool:
    device = getattr(tensor, "device", None)
    if device is None or callable(device):
        return True
    kind = getattr(device, "type", None) or getattr(device, "platform", None) or str(device)
    return "cpu" in str(kind).lower()


# NumPy scalar types converted directly (the same result as the ``numbers.Real`` branch below):
# True for integer types (converted through int, so a too large value gets the same error).
_NUMPY_SCALARS: dict[type, bool] = {
    **dict.fromkeys((np.float16, np.float32, np.float64, np.longdouble), False),
    **dict.fromkeys((np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                     np.intc, np.uintc, np.int_, np.uint), True),
}


class _Torch:
    """``torch.Tensor`` and its real dtypes, looked up once torch has been imported (never imported here)."""

    tensor: Any = None
    real_dtypes: frozenset[Any] = frozenset()

    @classmethod
    def tensor_type(cls) -> Any:
        if cls.tensor is None:
            torch = sys.modules.get("torch")
            tensor = getattr(torch, "Tensor", None)
            if not isinstance(tensor, type) or not hasattr(tensor, "is_cpu"):
                return None  # not (yet) imported, or too old for the fast path: the generic path handles it
            names = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8")
            cls.real_dtypes = frozenset(getattr(torch, n) for n in names if hasattr(torch, n))
            cls.tensor = tensor
        return cls.tensor


def _coerce_torch(name: str, value: Any) -> float | DeferredValue | None:
    """A plain ``torch.Tensor`` of a real dtype, without the generic path's attribute probing.

    Same outcomes as the generic path: CPU tensors are read now (``item()`` needs no
    detach and keeps no graph), others are detached and deferred. None: not handled here.
    """
    if value.dtype not in _Torch.real_dtypes:
        return None  # bool, complex, quantized...: the generic path gives the precise error
    if value.numel() != 1:
        raise ValueError(f"metric {name!r}: expected a scalar, got a tensor of shape {tuple(value.shape)}")
    if value.is_cpu:
        return float(value.item())
    return DeferredValue(value.detach())


def coerce_value(name: str, value: Any) -> float | DeferredValue:
    """Return ``value`` as a float (or a :class:`DeferredValue` for a device tensor).

    Raises ``TypeError`` for non-numeric input (str, None, bool, complex...) and
    ``ValueError`` for arrays with more than one element; both name the metric.
    Non-finite values (NaN, +/-Inf) are valid: they are kept and shown as gaps.
    """
    kind = type(value)
    if kind is float:
        exact: float = value  # the type check for mypy is ``kind is float`` (a name binding, no call: hot path)
        return exact
    try:
        return _coerce_other(name, value, kind)
    except (TypeError, ValueError, OverflowError) as exc:
        if str(exc).startswith("metric "):
            raise
        # a conversion inside NumPy or a number type failed (np.datetime64, a Decimal NaN...)
        raise (TypeError if isinstance(exc, TypeError) else ValueError)(
            f"metric {name!r}: cannot log {kind.__name__} {_describe(value)} as a number ({exc})") from None


def _coerce_other(name: str, value: Any, kind: type) -> float | DeferredValue:
    """:func:`coerce_value` for anything but a ``float``."""
    if kind is int:
        return _int_to_float(name, value)
    if kind is _Torch.tensor or (_Torch.tensor is None and kind is _Torch.tensor_type()):
        coerced = _coerce_torch(name, value)
        if coerced is not None:
            return coerced
    integral = _NUMPY_SCALARS.get(kind)
    if integral is not None:
        return _int_to_float(name, int(value)) if integral else float(value)
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"metric {name!r}: got a boolean {value!r}; log a number (e.g. float(flag))")
    if isinstance(value, numbers.Real):  # NumPy scalars, Fraction, Decimal-like reals
        if isinstance(value, numbers.Integral):
            return _int_to_float(name, int(value))
        return float(value)
    if isinstance(value, np.ndarray):
        _reject_dtype(name, value.dtype, value)
        if value.size != 1:
            raise ValueError(f"metric {name!r}: expected a scalar, got an array of shape {value.shape}")
        if value.dtype.kind not in "iuf":
            raise TypeError(f"metric {name!r}: unsupported dtype {value.dtype}")
        return float(value.reshape(()))
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype") and not isinstance(value, (str, bytes)):
        _reject_dtype(name, value.dtype, value)
        if _size_of(shape) != 1:
            raise ValueError(f"metric {name!r}: expected a scalar, got a tensor of shape {tuple(shape)}")
        detach = getattr(value, "detach", None)  # drop the autograd graph now (no data access)
        if callable(detach):
            value = detach()
        if _on_cpu(value):
            return float(value.reshape(()) if hasattr(value, "reshape") else value)
        return DeferredValue(value)
    raise TypeError(f"metric {name!r}: expected a number or a scalar tensor, got {kind.__name__} {_describe(value)}")


def _int_to_float(name: str, value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"metric {name!r}: integer {value} is too large for a float") from None


def coerce_step(step: Any) -> float:
    """Validate a step: a finite real number (int, float, NumPy scalar, size-1 array/tensor) that
    float64 holds exactly (an integer beyond 2**53 that would be rounded is refused)."""
    kind = type(step)
    if kind is float and math.isfinite(step):
        exact: float = step  # the type check for mypy is ``kind is float`` (a name binding, no call)
        return exact
    if kind is int:  # not bool (its own type); a too large int is refused by _exact_step
        return _exact_step(step)
    if isinstance(step, (bool, np.bool_)):
        raise TypeError(f"step must be a number, got a boolean {step!r}")
    if isinstance(step, (numbers.Integral, np.integer)):
        return _exact_step(int(step))
    try:
        value = coerce_value("step", step)
    except TypeError:
        raise TypeError(f"step must be a number, got {type(step).__name__} {_describe(step)}") from None
    if isinstance(value, DeferredValue):
        value = float(value.tensor)
    if not math.isfinite(value):
        raise ValueError(f"step must be finite, got {value!r}")
    return value


EXACT_STEP_MAX = float(2**53)  # every integer step up to here (in magnitude) is exact in float64


def _exact_step(step: int) -> float:
    try:
        f = float(step)
    except OverflowError:
        raise ValueError(f"step {step} is too large for a float") from None
    if f != step:
        raise ValueError(f"step {step} cannot be stored exactly as a float64 (integers beyond 2**53 = "
                         f"{2**53} are rounded: it would become {int(f)}); use smaller steps")
    return f


def resolve_deferred(tensors: Sequence[Any]) -> np.ndarray:
    """Fetch many device scalars to the host as float64, with one sync per (device, dtype) group.

    PyTorch tensors are stacked on their device and copied once; other array
    types fall back to one ``float()`` each (still off the training hot path).
    A value that cannot be fetched (a lost device, a data-less ``meta`` tensor)
    becomes NaN, with one warning per batch, so one bad value never blocks the plot.
    """
    out = np.empty(len(tensors), dtype=np.float64)
    torch = sys.modules.get("torch")
    groups: dict[Any, list[int]] = defaultdict(list)
    singles: list[int] = []
    for i, t in enumerate(tensors):
        if torch is not None and isinstance(t, torch.Tensor):
            groups[(t.device, t.dtype)].append(i)
        else:
            singles.append(i)
    if torch is not None:  # (no groups without it)
        for idx in groups.values():
            try:
                out[idx] = torch.stack([tensors[i].reshape(()) for i in idx]).cpu().double().numpy()
            except Exception:
                singles.extend(idx)
    failed: list[str] = []
    for i in singles:
        try:
            out[i] = float(np.asarray(tensors[i]).reshape(()))
        except Exception as exc:
            out[i] = np.nan
            failed.append(f"{type(exc).__name__}: {exc}")
    if failed:
        warnings.warn(
            f"lossviz_widget: {len(failed)} logged tensor value(s) could not be copied from their device "
            f"and are shown as NaN ({failed[0]})",
            RuntimeWarning,
            stacklevel=2,
        )
    return out


def coerce_array(name: str, what: str, value: Any, exact: bool = False) -> np.ndarray:
    """A 1-D float64 copy of an array-like of real numbers (a list, NumPy array or tensor).

    For bulk appends (:meth:`LossPlot.extend`): ``what`` says which argument it is
    ("steps", "values", ...). Booleans, complex numbers, strings, None and arrays that
    are not 1-D are rejected with an error naming the metric and the argument.
    Non-finite values are kept (the caller decides where they are allowed). A tensor on
    an accelerator is copied to the host here, once for the whole array.
    """
    if isinstance(value, (str, bytes)) or value is None or np.isscalar(value):
        raise TypeError(f"metric {name!r}: {what} must be a 1-D array-like of numbers, got {_describe(value)}")
    detach = getattr(value, "detach", None)
    if callable(detach) and not isinstance(value, np.ndarray):
        value = detach()
        if not _on_cpu(value) and callable(getattr(value, "cpu", None)):
            value = value.cpu()
        bfloat16 = getattr(sys.modules.get("torch"), "bfloat16", None)
        if bfloat16 is not None and getattr(value, "dtype", None) is bfloat16:
            value = value.float()  # NumPy has no bfloat16: widen (exactly) as log() does for a scalar
    try:
        arr = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"metric {name!r}: {what} is not an array of numbers ({type(exc).__name__}: {exc})") from None
    if arr.dtype.kind not in "iuf":
        kind = "booleans" if arr.dtype.kind == "b" else f"dtype {arr.dtype}"
        raise TypeError(f"metric {name!r}: {what} must hold real numbers, got {kind} in {_describe(value)}")
    if arr.ndim != 1:
        raise ValueError(f"metric {name!r}: {what} must be 1-D, got shape {arr.shape}")
    out = np.array(arr, dtype=np.float64)
    if exact and arr.dtype.kind in "iu":
        bad = [i for i in arr[np.abs(out) >= EXACT_STEP_MAX].tolist() if float(i) != i]
        if bad:
            raise ValueError(f"metric {name!r}: {what} such as {bad[0]} cannot be stored exactly as float64 "
                             "(integers beyond 2**53 are rounded). Nothing was logged.")
    return out
