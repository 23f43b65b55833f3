"""What the curves mean: incremental detectors that turn a training history into findings.

>>> from lossviz_widget.diagnostics import Diagnostics
>>> diag = Diagnostics()
>>> new = diag.update(plot.history)      # only points added since the last call are read

Codes: ``nonfinite``, ``negative_loss``, ``divergence``, ``loss_spike``, ``not_learning``,
``initial_loss``, ``plateau``, ``overfitting``, ``generalization_gap``, ``noisy``,
``lr_too_high``, ``lr_too_low``, ``converged``. Each is reported once per episode (hysteresis,
see :mod:`.findings`); the rules, their thresholds and sources are in ``docs/diagnostics.md``
and in :mod:`.series`, :mod:`.evaluations`, :mod:`.plateau` and :mod:`.generalization`; their
precision and recall on real training curves in ``benchmarks/DIAGNOSTICS.md``.
"""

from __future__ import annotations

from .engine import Diagnostics, DiagnosticsConfig
from .findings import Finding
from .html import findings_html
from .plateau import PlateauTracker

__all__ = ["Diagnostics", "DiagnosticsConfig", "Finding", "PlateauTracker", "findings_html"]
