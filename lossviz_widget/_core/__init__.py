"""The widget-free core: values, buffers, run stores, smoothing, downsampling, frames, the frame
scheduler and the :class:`~lossviz_widget._core.recorder.Recorder` that ties them together.

Nothing here imports ipywidgets, bqplot, traitlets or IPython, nor the ``_ui`` and ``_io`` layers
(checked by import-linter).
"""
