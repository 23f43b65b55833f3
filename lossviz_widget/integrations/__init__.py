"""One-line live curves for training frameworks.

Each integration lives in its own module and imports its framework only there, so
importing :mod:`lossviz_widget` or this package imports no framework:

| module                   | what it gives |
|--------------------------|------------------------------------------------|
| :mod:`.keras`            | ``LossPlotCallback`` (Keras 3, any backend) |
| :mod:`.history`          | ``log_history`` (``LossPlot.from_history``) |
| :mod:`.lightning`        | ``LossPlotLogger`` (``lightning.pytorch``) |
| :mod:`.pytorch_lightning` | ``LossPlotLogger`` (the ``pytorch_lightning`` package) |
| :mod:`.huggingface`      | ``LossPlotCallback`` (``transformers.Trainer``) |
| :mod:`.loop`             | ``track`` and ``live`` for hand-written loops |
| :mod:`.sklearn`          | ``plot_mlp``, ``partial_fit_step`` |
| :mod:`.xgboost`          | ``LossPlotCallback`` (``xgboost.callback``) |
| :mod:`.lightgbm`         | ``LossPlotCallback`` (a ``lightgbm.train`` callback) |
| :mod:`.ray_tune`         | ``LossPlotCallback`` (``ray.tune``: one run per trial) |

Every integration takes an existing :class:`~lossviz_widget.LossPlot` (``plot=``) or
creates one, and shows nothing by itself: put ``plot`` (or ``callback.plot``) as a
cell's last line, or pass ``display=True``.
"""
