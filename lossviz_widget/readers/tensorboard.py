"""TensorBoard event files, read with TensorBoard's own loader.

TensorBoard's ``LegacyEventFileLoader`` (``event_file_loader`` module) keeps the file open
and its read position between calls, so each poll parses only the records appended
since; a record that is not completely written yet (or a file cut mid-record) ends the
read without error, and the next poll resumes at that record. Scalars come in two forms,
both read here, one metric per tag: TF1-style ``simple_value`` (what
``torch.utils.tensorboard`` and ``tensorboardX`` write by default) and the TF2 form, a
rank-0 ``tensor`` whose metadata names the ``scalars`` plugin (``new_style=True``, TF2
writers; the metadata may come with a tag's first value only). Histograms, images, text
and other plugins' data are passed over. The loader's subclass ``EventFileLoader`` would
convert every ``simple_value`` to the TF2 form first; that conversion took over half of
the read time, so it is not used.

``tensorboard`` is imported when the first event file is opened, not before.
"""

from __future__ import annotations

import os
from typing import Any

from ._tail import Points, Tail

__all__ = ["TensorBoardTail", "is_event_file"]

SCALARS_PLUGIN = "scalars"


def is_event_file(name: str) -> bool:
    """TensorBoard's own test: event files have ``tfevents`` in their name."""
    return "tfevents" in name


class TensorBoardTail(Tail):
    format = "TensorBoard"

    def __init__(self, path: str | os.PathLike[str], run: str) -> None:
        super().__init__(path, run)
        self._loader: Any = None  # a LegacyEventFileLoader once the file is open (tensorboard is untyped)
        self._scalar_tags: set[str] = set()  # TF2 writers put the plugin metadata on a tag's first value only

    def _restart(self) -> None:
        self._loader = None

    def _read(self) -> Points:
        from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
        from tensorboard.compat import tf
        from tensorboard.util.tensor_util import make_ndarray

        points = Points(with_wall_times=True)
        if self._loader is None:
            try:
                self._loader = LegacyEventFileLoader(str(self.path))
            except tf.errors.NotFoundError:  # removed since the stat: a later poll sees the new file
                return points
        for event in self._loader.Load():
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    points.add(value.tag, float(event.step), value.simple_value, event.wall_time)
                    continue
                if value.metadata.plugin_data.plugin_name == SCALARS_PLUGIN:
                    self._scalar_tags.add(value.tag)
                if kind != "tensor" or value.tag not in self._scalar_tags:
                    continue
                array = make_ndarray(value.tensor)
                if array.size != 1:
                    self.skipped += 1
                    continue
                points.add(value.tag, float(event.step), float(array.reshape(())), event.wall_time)
        return points
