"""The service's web page in a real browser (Debian's Chromium), as on a phone."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.pipeline, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = REPO / ".test-artifacts" / "web-page.png"
# A phone's screen (CSS pixels), touch and all.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).is_file():
        pytest.fail("Chromium is missing: `make setup` installs Debian's chromium package.")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, service):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    # Offline but for the service: the page must need nothing else (no CDN, no font).
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    external = []
    page.on("request", lambda r: None if r.url.startswith(service.url) else external.append(r.url))
    page.goto(service.url + "/")
    yield page
    context.close()
    assert not [url for url in external if not url.startswith(("blob:", "data:"))]


def test_a_photo_shows_the_fruit_its_information_and_the_top_3(page, pipeline_run):
    info = pd.read_csv(REPO / "data" / "01_raw" / "fruit_info.csv").set_index("label")
    photo = next((pipeline_run.raw_images / "Test" / "Banana").iterdir())
    # The file input is found by its label, as a screen reader finds it.
    page.get_by_label("Or choose a photo").set_input_files(str(photo))
    name = page.locator("#fruit-name")
    name.wait_for(state="visible", timeout=30_000)
    assert name.inner_text() == "Banana"
    assert re.fullmatch(r"\d+\.\d%", page.locator("#fruit-probability").inner_text())
    about = page.locator("#fruit-info").inner_text()
    assert all(info.loc["Banana", column] in about for column in ("fruit", "family", "note"))
    top = page.locator("#top li").all_inner_texts()
    assert len(top) == 3 and top[0].startswith("Banana: ")
    # The answer is announced: the status line is the page's live region.
    assert re.fullmatch(r"Probably Banana \(\d+\.\d%\)\.", page.get_by_role("status").inner_text())
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_the_page_is_usable_from_the_keyboard(page, pipeline_run):
    """Tab reaches the camera, the file picker, then the button; nothing else is shown."""
    order = []
    for _ in range(3):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id"))
    assert order == ["camera", "photo", "ask"]
    assert page.get_by_label("Take a photo of one fruit").get_attribute("capture") == "environment"
    assert page.get_by_label("Or choose a photo").get_attribute("capture") is None
    assert page.locator("#preview").is_hidden() and page.locator("#answer").is_hidden()
    page.keyboard.press("Enter")  # on the button, no photo yet
    assert "first" in page.get_by_role("status").inner_text()


def test_a_file_that_is_not_a_photo_gets_a_readable_message(page, tmp_path):
    note = tmp_path / "note.jpg"
    note.write_text("not a photo")
    page.locator("#photo").set_input_files(str(note))
    status = page.get_by_role("status")
    status.filter(has_text="Sorry").wait_for(timeout=30_000)
    assert "not a usable photo" in status.inner_text()
    assert page.locator("#answer").is_hidden()
