"""The web UI end to end in a real headless Chromium (Debian's, driven by Playwright), with screenshots."""

import io
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glmimage.service.app import create_app
from glmimage.service.settings import Settings
from tests.service.service_helpers import LiveServer, png_bytes

CHROMIUM = os.environ.get("GLMIMAGE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("GLMIMAGE_UI_SCREENSHOTS", "outputs/service-ui"))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (`apt-get install -y chromium`, part of `make setup`)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def shot(page, name: str) -> Image.Image:
    SHOTS.mkdir(parents=True, exist_ok=True)
    data = page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    image = Image.open(io.BytesIO(data))
    assert np.asarray(image.convert("L")).std() > 10  # a rendered page, not a blank one
    return image


@contextmanager
def signed_in_page(browser, engine, tmp_path):
    """The web UI of a fresh tiny service signed in with the bootstrap admin key, once its size presets (from
    /v1/config) are in: (app, page, the page's script errors)."""
    app = create_app(Settings(model="tiny", data_dir=tmp_path, ocr=False, log_json=False), engine=engine,
                     text_checker=None)
    with LiveServer(app) as server:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.fill("#api-key", app.state.services.bootstrap_key)
        page.click("#save-key")
        page.wait_for_selector("#size option[value='128x160']", state="attached")
        yield app, page, errors


def test_create_edit_gallery_and_review(browser, engine, tmp_path):
    with signed_in_page(browser, engine, tmp_path) as (app, page, errors):
        page.wait_for_selector("#whoami:has-text('bootstrap-admin')")

        # 1. Text to image: two portraits, QA badges on both.
        page.fill("#prompt", 'A poster titled "SALE"')
        page.select_option("#size", "128x160")
        page.select_option("#n", "2")
        page.fill("#steps", "1")
        page.click("#submit")
        page.wait_for_selector("#job-status:has-text('succeeded')", timeout=60_000)
        assert page.locator("#result .qa-badge").count() == 2
        # The card is there once the job is; its image may still be loading (slow under a loaded machine).
        page.wait_for_function("(img => img && img.complete && img.naturalWidth > 0)"
                               "(document.querySelector('#result figure img'))", timeout=30_000)
        assert page.locator("#result figure img").first.evaluate("img => img.naturalWidth") == 128
        shot(page, "1-create")

        # 2. Edit with an uploaded reference; "marketing" sends every output to review.
        reference = tmp_path / "ref.png"
        reference.write_bytes(png_bytes((96, 64), 3))
        page.fill("#prompt", 'Replace the title with "NEW"')
        page.select_option("#size", "auto")
        page.select_option("#n", "1")
        page.select_option("#use-case", "marketing")
        page.set_input_files("#references", str(reference))
        assert page.locator("#reference-previews img").count() == 1
        page.click("#submit")
        page.wait_for_selector("#result .review-badge.needs_review", timeout=60_000)
        assert "edit · 96x64" in page.inner_text("#result .card")

        # 3. Gallery, newest first, with search.
        page.click("#tab-gallery")
        page.wait_for_selector("#gallery-grid .card")
        assert page.locator("#gallery-grid .card").count() == 2
        shot(page, "2-gallery")
        page.fill("#search", "SALE")
        page.click("#search-form button")
        page.wait_for_function("document.querySelectorAll('#gallery-grid .card').length === 1")

        # 4. Review queue: approve the edit.
        page.click("#tab-review")
        page.wait_for_selector("#review-grid .review-card")
        assert "reviews every output" in page.inner_text("#review-grid .review-card .reasons")
        assert page.inner_text("#review-count") == "(1)"
        shot(page, "3-review")
        page.click("#review-grid .approve")
        page.wait_for_selector("#review-grid :text('Nothing waits for review.')")
        assert errors == []
    with app.state.services.db.sessions() as session:
        from glmimage.service.tables import Output

        assert sorted(o.review_status for o in session.query(Output)) == ["approved"] * 3


def test_keys_that_may_not_review_never_poll_the_review_queue(browser, engine, tmp_path):
    app = create_app(Settings(model="tiny", data_dir=tmp_path, ocr=False, log_json=False), engine=engine,
                     text_checker=None)
    with LiveServer(app) as server:
        from glmimage.service.auth import create_key

        with app.state.services.db.session() as session:
            _, generate_only = create_key(session, "maker", ["generate"], rate_limit_per_minute=100)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        review_calls, errors = [], []
        page.on("request", lambda r: review_calls.append(r.url) if "/v1/review/queue" in r.url else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.fill("#api-key", generate_only)
        page.click("#save-key")
        page.wait_for_selector("#whoami:has-text('maker')")
        page.fill("#prompt", "a red kite")
        page.fill("#steps", "1")
        page.click("#submit")  # a finished job refreshes the review count: not for this key
        page.wait_for_selector("#job-status:has-text('succeeded')", timeout=60_000)
        page.reload()  # and the start-up with this key stored
        page.wait_for_selector("#whoami:has-text('maker')")
        page.wait_for_timeout(300)
        assert review_calls == [] and not page.is_visible("#tab-review")

        page.fill("#api-key", app.state.services.bootstrap_key)  # a key that may review: the tab and count appear
        with page.expect_request(lambda r: "/v1/review/queue" in r.url):
            page.click("#save-key")
        page.wait_for_selector("#tab-review", state="visible")
        assert errors == []


def test_masked_edit(browser, engine, tmp_path):
    with signed_in_page(browser, engine, tmp_path) as (app, page, errors):
        reference, mask = tmp_path / "ref.png", tmp_path / "mask.png"
        reference.write_bytes(png_bytes((128, 96), 5))
        alpha = Image.new("RGBA", (128, 96), (0, 0, 0, 255))
        alpha.paste((0, 0, 0, 0), (0, 0, 48, 96))  # edit the left 48 columns
        alpha.save(mask)
        page.fill("#prompt", "Paint the left side red")
        page.select_option("#size", "128x160")  # a masked edit keeps the reference's size whatever is chosen
        page.fill("#steps", "2")
        page.set_input_files("#references", str(reference))
        page.set_input_files("#mask", str(mask))
        page.click("#submit")
        page.wait_for_selector("#job-status:has-text('succeeded')", timeout=60_000)
        assert "edit · masked · 128x96" in page.inner_text("#result .card")
        src = page.locator("#result figure img").first.get_attribute("src")
        import httpx

        out = np.asarray(Image.open(io.BytesIO(httpx.get(src).content)).convert("RGB")).astype(int)
        source = np.asarray(Image.open(reference).convert("RGB")).astype(int)
        assert np.abs(out[:, 64:] - source[:, 64:]).max() <= 1  # kept outside the mask
        assert errors == []
