"""Plot metrics of a ``torch.distributed`` (DDP) job once, reduced across ranks, on rank 0.

>>> logger = DistributedLogger(lambda: LossPlot(title="ddp", log_file="run.jsonl"))
>>> logger.log(loss=loss, step=step)        # on every rank, every time; rank 0 plots the mean

Every rank calls :meth:`DistributedLogger.log` with the same metric names (in any
order); the values are reduced with **one** ``all_reduce`` per call (not one per
metric) and only rank 0 of the group builds the plot (lazily, through
``make_plot``) and logs to it. The other ranks never create a widget.

How one call stays one collective and can never hang on a mistake: the values are
sent in a tensor of fixed length (:data:`CHUNK` slots) together with a header made
from a hash of the sorted metric names. After the reduction every rank compares the
reduced header with its own; if any rank logged other names, or passed a value
``log()`` rejects, *every* rank raises (the bad rank its own ``TypeError``/
``ValueError``, the others a ``RuntimeError``) instead of the ranks waiting on
collectives of different sizes. Only a call with more values than fit in one chunk
(more than 60 metrics with ``mean``/``sum``, 31 with ``max``/``min``) sends the rest in a
second ``all_reduce``, after the names were checked.

Non-finite values survive: NaN on any rank makes the reduced value NaN for every
``reduce`` (for ``max``/``min`` too, which collective backends do not guarantee, so
NaNs are flagged in extra slots); +/-Inf follows IEEE arithmetic (``mean`` of
``inf`` and ``-inf`` is NaN, ``max`` of ``inf`` and ``1`` is ``inf``).

Values may be Python/NumPy numbers or size-1 tensors on any device. The reduction
runs in float64 on the device of the first tensor value; with no tensor values, on
the current CUDA device for a NCCL group and on the CPU otherwise. With CUDA tensors
each call waits for the reduction (one device sync per call), so log every few steps.

Without an initialised process group (``torch.distributed`` unavailable or
``init_process_group`` not called) the logger is a plain single-process logger: this
process is rank 0, values are logged as given, no collective runs. The process group is
looked up on every call, so a logger may be made before ``init_process_group``. The step is rank
0's (``step=None`` counts calls).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._core.values import DeferredValue, check_name, coerce_step, coerce_value, merge_metrics

if TYPE_CHECKING:
    from ._ui import LossPlot

__all__ = ["CHUNK", "REDUCTIONS", "DistributedLogger"]

REDUCTIONS = ("mean", "sum", "max", "min")
CHUNK = 64  # float64 slots in the one all_reduce of a call: header + values (+ NaN flags), zero padded
_HASH_BITS = 16  # each header hash; its square (SUM header) stays exact in float64 for 2**21 ranks


class DistributedLogger:
    """Log the same metrics on every rank; rank 0 plots their reduction across ranks.

    ``make_plot`` builds the plot on the first :meth:`log` (or :attr:`plot`) of a
    plotting rank; default ``LossPlot()``. ``reduce`` is ``"mean"`` (default),
    ``"sum"``, ``"max"`` or ``"min"``. ``group`` is the process group to reduce over
    (default: the world). With ``rank0_only=False`` every rank plots the reduced
    values (each builds its own plot); by default only rank 0 of ``group`` does.
    """

    def __init__(
        self,
        make_plot: Callable[[], LossPlot] | None = None,
        *,
        reduce: str = "mean",
        group: Any = None,
        rank0_only: bool = True,
    ) -> None:
        if reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduce!r}")
        if make_plot is not None and not callable(make_plot):
            raise TypeError(f"make_plot must be a callable returning a LossPlot (or None), got {make_plot!r}")
        self.reduce = reduce
        self.group = group
        self.rank0_only = rank0_only
        self._make_plot = make_plot
        self._plot: LossPlot | None = None

    # The process group is looked up on each use, so a logger made before
    # ``init_process_group`` (or after ``destroy_process_group``) still does the right thing.

    @property
    def rank(self) -> int:
        """This process's rank in ``group``; 0 without a process group."""
        dist = _process_group_module()
        if dist is None:
            return 0
        rank = dist.get_rank(self.group)
        if rank < 0:
            raise ValueError("group: this process is not a member of the given process group")
        return rank

    @property
    def world_size(self) -> int:
        """The number of ranks in ``group``; 1 without a process group."""
        dist = _process_group_module()
        return 1 if dist is None else dist.get_world_size(self.group)

    @property
    def plotting(self) -> bool:
        """Whether this rank plots: rank 0, or every rank with ``rank0_only=False``."""
        return not self.rank0_only or self.rank == 0

    @property
    def plot(self) -> LossPlot | None:
        """The plot of this rank, built now if needed; None on ranks that do not plot."""
        if self._plot is None and self.plotting:
            if self._make_plot is None:
                from ._ui import LossPlot

                self._plot = LossPlot()
            else:
                self._plot = self._make_plot()
        return self._plot

    def log(self, metrics: Mapping[str, Any] | None = None, /, *, step: float | None = None,
            **values: Any) -> None:
        """Reduce one value per metric across ranks and log the result on the plotting rank(s).

        Call it on every rank of the group, with the same metric names. Arguments as
        :meth:`LossPlot.log`. Bad input raises on every rank (see the module docstring).
        """
        plotting = self.plotting  # (a process outside ``group`` fails here, before any collective)
        names: tuple[str, ...] = ()
        coerced: list[Any] = []
        error: Exception | None = None
        try:
            merged = merge_metrics(metrics, values)
            for name in merged:
                check_name(name)
            names = tuple(sorted(merged))  # canonical order: ranks may pass the names in any order
            coerced = [_unwrap(coerce_value(name, merged[name])) for name in names]
            if step is not None:
                coerce_step(step)
        except (TypeError, ValueError) as exc:
            error = exc
        dist = _process_group_module()
        if dist is None:
            if error is not None:
                raise error
            reduced: list[Any] = coerced
        else:
            reduced = self._all_reduce(dist, names, coerced, error)
        if plotting and (plot := self.plot) is not None:  # (it is, on a plotting rank)
            index = {name: i for i, name in enumerate(names)}
            plot.log({name: reduced[index[name]] for name in merged}, step=step)  # the caller's order

    def close(self) -> None:
        """Close this rank's plot, if it built one."""
        if self._plot is not None:
            self._plot.close()

    # -- the collective ---------------------------------------------------------------------

    def _all_reduce(self, dist: Any, names: tuple[str, ...], values: list[Any],
                    error: Exception | None) -> list[Any]:
        """One ``all_reduce`` (two for very many metrics); raises on every rank on a mismatch."""
        import torch

        world_size = self.world_size
        device = _device(values, dist.get_backend(self.group))
        sums = self.reduce in ("mean", "sum")
        own = _header(names if error is None else None, sums)
        n = len(values)
        if error is None and n:
            column = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).reshape(())
                                  for v in values])
            if sums:
                payload = column
            else:  # NaN would be lost (or not) depending on the backend: flag it, reduce the rest
                nan = torch.isnan(column)
                fill = float("-inf") if self.reduce == "max" else float("inf")
                sign = 1.0 if self.reduce == "max" else -1.0  # max of the flags / min of their negatives
                payload = torch.cat([torch.where(nan, fill, column), nan.to(torch.float64) * sign])
        else:
            payload = torch.zeros(0, dtype=torch.float64, device=device)
        data = torch.cat([torch.tensor(own, dtype=torch.float64, device=device), payload])
        first = torch.zeros(CHUNK, dtype=torch.float64, device=device)
        first[: min(CHUNK, len(data))] = data[:CHUNK]
        op = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM,
              "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}[self.reduce]
        dist.all_reduce(first, op=op, group=self.group)
        scale = float(world_size) if sums else 1.0
        agreed = first[: len(own)].tolist() == [scale * h for h in own]
        if error is not None:
            raise error
        if not agreed:
            raise RuntimeError(
                f"DistributedLogger.log: the ranks did not log the same metrics in this call (rank "
                f"{dist.get_rank(self.group)} logged {list(names)}), or another rank passed a value log() rejects; "
                f"every rank must call log() with the same metric names each time"
            )
        if len(data) > CHUNK:  # every rank agreed on the names, hence on this size
            rest = data[CHUNK:].clone()
            dist.all_reduce(rest, op=op, group=self.group)
            out = torch.cat([first[len(own):], rest])
        else:
            out = first[len(own): len(data)]
        if self.reduce == "mean":
            out = out / world_size
        elif not sums:
            out = torch.where(out[n:] != 0, float("nan"), out[:n])
        return out.tolist() if out.device.type == "cpu" else list(out)  # device values stay deferred


def _process_group_module() -> Any:
    """``torch.distributed`` when a process group is initialised, else None (single process)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return None
    return dist if dist.is_available() and dist.is_initialized() else None


def _unwrap(value: float | DeferredValue) -> Any:
    return value.tensor if isinstance(value, DeferredValue) else value


def _device(values: list[Any], backend: str) -> Any:
    """Where to reduce: the first tensor's device, else CUDA for NCCL, else the CPU."""
    import torch

    for v in values:
        if isinstance(v, torch.Tensor):
            return v.device
    if "nccl" in str(backend).lower():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _header(names: tuple[str, ...] | None, sums: bool) -> list[float]:
    """Two hashes of the names (zeros for a rank with bad input), laid out so that the
    reduced header equals (world size times, for SUM) this rank's own on every rank
    exactly when all ranks sent the same: ``[a, a*a, b, b*b]`` for SUM (equal sums of
    values and squares means no spread), ``[h, -h]`` for MAX/MIN (max equals min).
    """
    if names is None:
        return [0.0] * (4 if sums else 2)
    key = zlib.crc32("\x00".join(names).encode("utf-8", "surrogatepass") + len(names).to_bytes(4, "little"))
    if not sums:
        return [float(key + 1), -float(key + 1)]
    mask = (1 << _HASH_BITS) - 1
    a, b = (key & mask) + 1.0, (key >> _HASH_BITS) + 1.0
    return [a, a * a, b, b * b]
