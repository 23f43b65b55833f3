"""Browser fixtures from :mod:`browser_harness`, registered once for every test module.

Session-scoped fixtures imported into several test modules are registered once per
module, so each module would start its own JupyterLab server and its own Playwright;
the second ``sync_playwright().start()`` in one process then fails ("using Playwright
Sync API inside the asyncio loop"). Registered here, one server and one Chromium serve
the whole session: browser test modules use ``notebook_page``/``page``/
``jupyterlab_server``/``chromium_browser`` by name and do not import them.
"""

import pytest
from browser_harness import chromium_browser, jupyterlab_server, notebook_page, page  # noqa: F401


@pytest.fixture
def as_in_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """``LossPlot``s made while this fixture is active draw their frames on the background render
    thread as data arrives, as they do in a Jupyter kernel (outside one a plot draws only on
    ``flush()``). A plot decides this once, when it is made, by asking ``in_kernel()``; this is
    the one place tests change that answer."""
    monkeypatch.setattr("lossviz_widget._ui.widget.in_kernel", lambda: True)
