"""Browser fixtures from :mod:`browser_harness`, registered once for every test module.

Session-scoped fixtures imported into several test modules are registered once per
module, so each module would start its own JupyterLab server and its own Playwright;
the second ``sync_playwright().start()`` in one process then fails ("using Playwright
Sync API inside the asyncio loop"). Registered here, one server and one Chromium serve
the whole session: browser test modules use ``notebook_page``/``page``/
``jupyterlab_server``/``chromium_browser`` by name and do not import them.
"""

from browser_harness import chromium_browser, jupyterlab_server, notebook_page, page  # noqa: F401
