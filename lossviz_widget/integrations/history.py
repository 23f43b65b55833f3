"""Plot results that already exist: Keras' ``History`` or any dict of per-epoch lists.

``LossPlot.from_history(history)`` builds a plot from one; :func:`log_history` adds one to
an existing plot. No framework is imported: a ``keras.callbacks.History`` is recognised by
its ``history`` dict (and its ``epoch`` list, which gives the steps; without it the steps
are ``0, 1, ...``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._ui import LossPlot

from .._core.values import check_name, coerce_step, coerce_value

__all__ = ["history_rows", "log_history"]


def _columns(history: Any) -> tuple[dict[str, list[Any]], list[Any] | None]:
    """The metric columns of ``history`` and, for a Keras ``History``, its epoch numbers."""
    epochs = None
    if not isinstance(history, Mapping) and isinstance(getattr(history, "history", None), Mapping):
        epochs = list(getattr(history, "epoch", None) or []) or None
        history = history.history
    if not isinstance(history, Mapping):
        raise TypeError(
            "history must be a keras.callbacks.History or a mapping of metric name -> list of values, "
            f"got {type(history).__name__}"
        )
    if not history:
        raise ValueError("history is empty: expected at least one metric, e.g. {'loss': [0.9, 0.7]}")
    columns = {}
    for name, values in history.items():
        check_name(name)
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
            raise TypeError(f"history[{name!r}]: expected a list of per-epoch values, got {type(values).__name__}")
        columns[name] = list(values)
    return columns, epochs


def history_rows(history: Any) -> list[tuple[float, dict[str, Any]]]:
    """``(step, {metric: value})`` per epoch of ``history``, every value checked.

    All columns must have the same length (Keras with ``validation_freq > 1`` records fewer
    validation values; log those yourself with their epochs). Bad input raises
    ``TypeError``/``ValueError`` naming the metric and the epoch. NaN/Inf are kept.
    """
    columns, epochs = _columns(history)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name!r} has {n}" for name, n in lengths.items())
        raise ValueError(f"history columns must have one value per epoch, but {detail}")
    n = next(iter(lengths.values()))
    if epochs is None or len(epochs) != n:
        epochs = list(range(n))
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for name, values in columns.items():
        for i, value in enumerate(values):
            try:
                rows[i][name] = coerce_value(name, value)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"history[{name!r}][{i}] (epoch {epochs[i]}): {exc}") from None
    return [(coerce_step(e), row) for e, row in zip(epochs, rows)]


def log_history(history: Any, plot: LossPlot) -> LossPlot:
    """Log ``history`` (see :func:`history_rows`) into an existing ``plot``; nothing is logged on bad input."""
    for step, row in history_rows(history):
        plot.log(row, step=step)
    return plot
