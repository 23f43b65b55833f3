"""Loss landscapes: the shape of the loss around a solution, live in a notebook.

>>> from lossviz_widget import landscape as ls
>>> ls.interpolate(init_state, model, loss_fn, (x, y))      # Goodfellow et al. 2015
>>> ls.plane(model, loss_fn, (x, y), steps=21, seed=0)       # Li et al. 2018, filter-normalized
>>> rec = ls.TrajectoryRecorder(every=10)                     # call rec.record(model) every step
>>> ls.trajectory(rec, model, loss_fn, (x, y))                # PCA plane with the training path

Works for a PyTorch ``nn.Module`` (torch is imported only when one is passed) and for
a plain NumPy loss of a parameter vector. Modules, one job each: :mod:`.params`
(flat vectors ↔ named arrays), :mod:`.targets`/:mod:`.torch_target` (what is
evaluated, with exact restore), :mod:`.directions` (Gaussian, filter normalization,
PCA), :mod:`.grid` (the data and its coarse-to-fine order), :mod:`.runner`
(computing, cancel), :mod:`.trajectory` (snapshots), :mod:`.picture` (what is drawn),
:mod:`.view` (the widget), :mod:`.export` (files), :mod:`.api` (the one-call functions).
"""

from .api import interpolate, line, plane, trajectory
from .directions import PCA, normalize, pca, random_directions
from .export import load, save
from .grid import Landscape, TrajectoryPath
from .runner import Runner
from .trajectory import TrajectoryRecorder
from .view import LandscapeView

__all__ = [
           "PCA",
           "Landscape",
           "LandscapeView",
           "Runner",
           "TrajectoryPath",
           "TrajectoryRecorder",
           "interpolate",
           "line",
           "load",
           "normalize",
           "pca",
           "plane",
           "random_directions",
           "save",
           "trajectory",
]
