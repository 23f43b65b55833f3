"""The front-end files of ``js/`` (ES modules and CSS), found where they are installed.

The wheel ships the repository's ``js/`` folder as ``lossviz_widget/js/``; an editable install
reads it from the repository. Used by the anywidgets of ``_ui`` (their ``_esm``/``_css``) and by
the HTML report, which inlines the hover readout.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

__all__ = ["js_file"]


def js_file(name: str) -> Path:
    """``name`` (a file of ``js/``) from the installed package, else from the repository's ``js/``."""
    packaged = importlib.resources.files("lossviz_widget") / "js" / name
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "js" / name
