"""TensorBoard event files, read with TensorBoard's own loader.

:class:`tensorboard.backend.event_processing.event_file_loader.EventFileLoader` keeps the
file open and its read position between calls, so each poll parses only the records
appended since; a record that is not completely written yet (or a file cut mid-record)
ends the read without error, and the next poll resumes at that record. Its compat layer
turns TF1-style ``simple_value`` scalars (what ``torch.utils.tensorboard`` and
``tensorboardX`` write by default) into the TF2 form, a rank-0 ``tensor`` whose metadata
names the ``scalars`` plugin; those are the values read here, one metric per tag.
Histograms, images, text and other plugins' data are passed over.

``tensorboard`` is imported when the first event file is opened, not before.
"""

from __future__ import annotations

import os

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
        self._loader = None
        self._scalar_tags: set[str] = set()  # TF2 writers put the plugin metadata on a tag's first value only

    def _restart(self) -> None:
        self._loader = None

    def _read(self) -> Points:
        from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
        from tensorboard.compat import tf
        from tensorboard.util.tensor_util import make_ndarray

        points = Points(with_wall_times=True)
        if self._loader is None:
            try:
                self._loader = EventFileLoader(str(self.path))
            except tf.errors.NotFoundError:  # removed since the stat: a later poll sees the new file
                return points
        for event in self._loader.Load():
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == SCALARS_PLUGIN:
                    self._scalar_tags.add(value.tag)
                elif value.tag not in self._scalar_tags:
                    continue
                array = make_ndarray(value.tensor)
                if array.size != 1:
                    self.skipped += 1
                    continue
                points.add(value.tag, float(event.step), float(array.reshape(())), event.wall_time)
        return points
