"""kedro-viz: the static site builds, and a real browser (Debian's Chromium) renders it."""

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_project
from tests.test_project import DATASETS, KEDRO

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Kept after the run (git-ignored), for people to look at.
SCREENSHOT = REPO / ".test-artifacts" / "kedro-viz.png"


@pytest.fixture(scope="module")
def viz_site(tmp_path_factory) -> Path:
    """`kedro viz build` (reads KEDRO_ENV, no --env option) in a copy of the project."""
    project = copy_project(tmp_path_factory.mktemp("viz_project"))
    subprocess.run(
        [KEDRO, "viz", "build"],
        cwd=project,
        check=True,
        env={**os.environ, "KEDRO_ENV": "local", "KEDRO_DISABLE_TELEMETRY": "true"},
    )
    return project / "build"


def test_kedro_viz_build_holds_every_pipeline(viz_site, all_pipelines):
    pipelines = all_pipelines
    assert (viz_site / "index.html").is_file()
    graph = json.loads((viz_site / "api" / "main").read_text())
    tasks = {node["name"] for node in graph["nodes"] if node["type"] == "task"}
    assert {node.name for node in pipelines["__default__"].nodes} <= tasks
    assert set(DATASETS) <= {node["name"] for node in graph["nodes"] if node["type"] == "data"}
    assert set(pipelines) - {"__default__"} <= {p["id"] for p in graph["pipelines"]}


@pytest.fixture
def served_site(viz_site):
    """The built site over HTTP on loopback (the app fetches its JSON, file:// would not do)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(viz_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _squash(text: str) -> str:
    return re.sub(r"[\s_]+", "", text).lower()


def test_kedro_viz_renders_the_nodes_in_chromium(served_site, all_pipelines):
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: `make setup` installs Debian's chromium package.")
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError  # noqa: PLC0415
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            # Only loopback: anything else the app asks for (fonts, telemetry) is refused.
            page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
            page.goto(served_site)
            page.wait_for_selector("g.pipeline-node", timeout=60_000)
            # A first visit opens kedro-viz's feature tour over the graph, a moment after
            # the graph: close it so the screenshot shows the pipeline.
            tour_close = page.locator(".feature-hints__close").first
            with contextlib.suppress(PlaywrightTimeoutError):
                tour_close.click(timeout=5_000)
            page.wait_for_timeout(1500)  # let the layout animation settle for the screenshot
            shown = {_squash(t) for t in page.locator(".pipeline-node__text").all_text_contents()}
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    expected = {_squash(node.name) for node in all_pipelines["__default__"].nodes}
    assert expected <= shown, f"not rendered: {expected - shown}"
    assert SCREENSHOT.stat().st_size > 10_000
