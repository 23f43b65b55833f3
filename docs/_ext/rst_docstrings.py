"""A griffe extension: the package's reST-flavoured docstrings, shown as Markdown on the site.

The docstrings are written for ``help()`` and editors, with Sphinx roles
(``:class:`~lossviz_widget.LossPlot```) and doctest lines (``>>> plot.log(...)``).
mkdocstrings renders docstrings as Markdown, where a role would show as literal
``:class:`` text and ``>>>`` as a nested block quote. So, as each object is loaded,
a role becomes a code span of its target (``~`` keeping only the last name, as Sphinx
does) and each run of ``>>>`` lines becomes a fenced ``pycon`` block. Links are not
made: many roles are relative (``:mod:`.series```) and an unresolved link would fail
``mkdocs build --strict``. Only the site sees the change; the source is not touched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:attr|class|data|exc|func|meth|mod|obj):`(~?)([^`]+)`")


def _role_to_code(match: re.Match[str]) -> str:
    """``:meth:`~a.b.c``` -> ``c`` in a code span; ``:mod:`.keras``` -> ``.keras``."""
    target = match.group(2)
    if match.group(1):
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def _fence_doctests(text: str) -> str:
    """Wrap each doctest (a ``>>>`` line up to the next blank line) in a ```` ```pycon ```` fence."""
    out: list[str] = []
    in_block = False
    for line in text.splitlines():
        is_doctest = line.lstrip().startswith(">>>") or (in_block and line.strip() != "")
        if is_doctest and not in_block:
            out.append("```pycon")
            in_block = True
        elif not is_doctest and in_block:
            out.append("```")
            in_block = False
        out.append(line)
    if in_block:
        out.append("```")
    return "\n".join(out)


def markdown_docstring(text: str) -> str:
    """The docstring ``text`` with its roles and doctest lines made Markdown."""
    return _fence_doctests(_ROLE.sub(_role_to_code, text))


class RstDocstrings(griffe.Extension):
    """Rewrite every loaded object's docstring with :func:`markdown_docstring`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
