"""The page for people, in a real (headless) Chromium: pressing ring shows the ring."""

from __future__ import annotations

import pytest

from tests.browser import CHROMIUM, Browser
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
