"""Driving the web chat page in browser tests: send a message, wait for an answer."""

from __future__ import annotations

TURN_MS = 30000  # one turn of the real model on two shared cores, with margin


def ask(page, text):
    """Type a message in the web chat and send it; the number of bot bubbles before."""
    count = page.locator(".msg.bot").count()
    page.fill("#input", text)
    page.press("#input", "Enter")
    return count


def wait_bot_text(page, fragment, after=0, timeout=TURN_MS):
    """The text of the last bot bubble after the first ``after`` that contains ``fragment``."""
    page.wait_for_function(
        """([fragment, after]) => [...document.querySelectorAll('.msg.bot')]
              .slice(after).some(e => e.textContent.includes(fragment))""",
        arg=[fragment, after],
        timeout=timeout,
    )
    return [t for t in page.locator(".msg.bot").all_inner_texts()[after:] if fragment in t][-1]
