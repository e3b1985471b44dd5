"""The page for people, in a real (headless) Chromium: pressing ring shows the ring."""

from __future__ import annotations

import av
import pytest

from tests.browser import CHROMIUM, Browser
from tests.conftest import demo_house
from tests.test_operations import page_url

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")


async def test_pressing_ring_on_the_page_shows_the_ring(demo):
    async with Browser() as browser:
        await browser.call("Page.navigate", url=page_url(demo) + "/")
        await browser.wait_for("document.body.dataset.ready === 'true'")
        cards = await browser.evaluate(
            "[...document.querySelectorAll('.card h2')].map(h => h.textContent)")
        assert len(cards) == 5 and "Front gate" in cards and "Front Door" in cards
        serial = await browser.evaluate(
            "document.querySelector('.card button[data-action=ring]')"
            ".closest('.card').dataset.serial")
        await browser.evaluate(
            f"document.querySelector('[data-serial=\"{serial}\"] "
            "button[data-action=ring]').click()")
        await browser.wait_for(
            f"document.querySelector('[data-serial=\"{serial}\"]').classList"
            ".contains('ringing')")
        log = await browser.evaluate(
            f"document.querySelector('[data-serial=\"{serial}\"] .log').textContent")
        assert "someone rang" in log
        assert await browser.evaluate(
            f"document.querySelector('[data-serial=\"{serial}\"] img').src"
            ".startsWith('blob:')")


async def test_a_relay_unlocks_from_the_page(demo):
    async with Browser() as browser:
        await browser.call("Page.navigate", url=page_url(demo) + "/")
        await browser.wait_for("document.body.dataset.ready === 'true'")
        await browser.evaluate("document.querySelector('button[data-command=unlock]').click()")
        text = await browser.wait_for(
            "[...document.querySelectorAll('.log')].map(l => l.textContent)"
            ".find(t => t.includes('unlocked'))")
        assert text.endswith("unlocked")


TOKEN = "page-test-token-0123456789"


@pytest.fixture
async def guarded_demo(tmp_path):
    """The demo house behind a client token."""
    async with demo_house(tmp_path, **{"server.auth_token": TOKEN}) as bridge:
        yield bridge


async def test_the_page_works_behind_a_token_given_in_its_address(guarded_demo):
    async with Browser() as browser:
        await browser.call("Page.navigate", url=page_url(guarded_demo) + f"/#token={TOKEN}")
        await browser.wait_for("document.body.dataset.ready === 'true'")
        assert TOKEN not in await browser.evaluate("location.href")  # out of the address bar
        cards = await browser.evaluate("document.querySelectorAll('.card').length")
        assert cards == 5
        await browser.evaluate("document.querySelector('button[data-action=ring]').click()")
        await browser.wait_for("document.querySelector('.card.ringing') !== null")


async def test_the_live_button_plays_the_doorbirds_video_on_the_page(demo, tmp_path):
    from tests.test_live_http import camera, released, wait_until  # it imports this module

    async with Browser() as browser:
        await browser.call("Page.navigate", url=page_url(demo) + "/")
        await browser.wait_for("document.body.dataset.ready === 'true'")
        live = await browser.evaluate(
            "[...document.querySelectorAll('button[data-live]')].map(b => b.dataset.live)")
        serial = camera(demo)
        assert serial in live  # every camera with a stream has the button
        card = f"document.querySelector('[data-serial=\"{serial}\"]')"
        await browser.evaluate(f"{card}.querySelector('button[data-live]').click()")
        await browser.wait_for(f"{card}.querySelector('video').videoWidth > 0", timeout=60)
        assert await browser.evaluate(f"{card}.querySelector('video').videoWidth") == 1280
        start = await browser.evaluate(f"{card}.querySelector('video').currentTime")
        await browser.wait_for(f"{card}.querySelector('video').currentTime > {start} + 1",
                               timeout=60)
        await browser.evaluate(f"{card}.scrollIntoView()")
        shot = tmp_path / "live.png"
        shot.write_bytes(await browser.screenshot())
        with av.open(str(shot)) as container:
            pixels = next(container.decode(video=0)).to_ndarray(format="gray")
        assert pixels.std() > 20  # a picture, not a blank page
        await browser.evaluate(f"{card}.querySelector('button[data-live]').click()")
        assert await browser.evaluate(f"{card}.querySelector('video')") is None
    await wait_until(lambda: released(demo, serial))
