"""Playwright + Debian's Chromium for the browser tests (see ../shared/TESTING.md)."""

import json
import os

import pytest

CHROMIUM = "/usr/bin/chromium"
# The browser contexts the page tests use: a phone (390×844 and 360×780), the host's
# console (1280×800), the OBS stage (1920×1080); Chinese, as the audience is.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
}
NARROW = {**PHONE, "viewport": {"width": 360, "height": 780}}
CONSOLE = {"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN"}
STUDIO = {"viewport": {"width": 1920, "height": 1080}, "locale": "zh-CN"}
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def need_browser() -> None:
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is not installed (Debian package chromium)"
    else:
        try:
            import playwright  # noqa: F401
        except ImportError:
            reason = "playwright is not installed"
    if reason:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(f"REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)


class PageErrors:
    """Collects console errors and uncaught exceptions of a page."""

    def __init__(self, page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))


class SentFrames:
    """Every frame a page sends on its WebSockets (attach before the page connects)."""

    def __init__(self, page) -> None:
        self.frames: list[str | bytes] = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: self.frames.append(payload)))

    def likes(self) -> dict[str, int]:
        """Taps sent, per side (like frames merge taps)."""
        out = {"a": 0, "b": 0}
        for raw in self.frames:
            msg = json.loads(raw) if isinstance(raw, str) else None
            if isinstance(msg, dict) and msg.get("type") == "like":
                out[msg["side"]] += msg["count"]
        return out


# Finite animations and transitions still running on an element and below it. Endless ones
# (the score bar's spark, a blinking clock) are part of the look, not a state to wait out.
_RUNNING = """sel => {
  const root = document.querySelector(sel);
  if (!root) return -1;
  return root.getAnimations({ subtree: true }).filter((a) => a.playState === "running"
    && Number.isFinite(a.effect ? a.effect.getComputedTiming().endTime : Infinity)).length;
}"""


async def animations_done(page, selector: str = "body", timeout: float = 10) -> None:
    """Wait (polled from Python: the pages' CSP forbids wait_for_function's eval) until
    every finite animation on `selector` and its subtree has finished."""
    from conftest import wait_until

    await wait_until(lambda: _zero(page.evaluate(_RUNNING, selector)), timeout=timeout)


async def _zero(pending) -> bool:
    return await pending == 0
