"""Message previews: the agent sees what is coming while a slow piece is in flight.

Udesk allows 3 previews per second per session; we keep at most one pending preview per
session (last content wins) and send no more often than every ``min_interval`` seconds.  A
2065 (not activated) turns previews off for good; they never disturb messages.
"""

from __future__ import annotations

import asyncio
import logging
import time

from bridge import tasks
from bridge.core.errors import BridgeError, PreviewUnavailable
from bridge.core.ports import UdeskGateway

log = logging.getLogger("bridge.core.previews")


class PreviewSender:
    def __init__(self, udesk: UdeskGateway, *, per_second: float = 3.0) -> None:
        self.udesk = udesk
        # A little slack over 1/3 s keeps us under 3/s even with clock jitter on their side.
        self.min_interval = 1.0 / per_second + 0.02
        self.enabled = True
        self._pending: dict[int, str] = {}
        self._last_sent: dict[int, float] = {}
        self._workers: dict[int, asyncio.Task[None]] = {}

    def show(self, im_sub_session_id: int, content: str) -> None:
        """Ask for a preview; returns at once (previews never slow a message down)."""
        if not self.enabled or im_sub_session_id <= 0:
            return
        self._pending[im_sub_session_id] = content[:500]
        if im_sub_session_id not in self._workers:
            self._workers[im_sub_session_id] = tasks.create(
                self._drain(im_sub_session_id), name=f"preview:{im_sub_session_id}"
            )

    def landed(self, im_sub_session_id: int) -> None:
        """The message arrived (Udesk clears the preview itself): drop what is pending."""
        self._pending.pop(im_sub_session_id, None)

    async def _drain(self, sid: int) -> None:
        try:
            while sid in self._pending and self.enabled:
                wait = self._last_sent.get(sid, 0.0) + self.min_interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                content = self._pending.pop(sid, None)
                if content is None:
                    break
                self._last_sent[sid] = time.monotonic()
                try:
                    await self.udesk.preview(sid, content)
                except PreviewUnavailable:
                    log.info("message previews are not activated in Udesk; turning them off")
                    self.enabled = False
                except BridgeError as exc:
                    log.debug("preview for %s not sent: %s", sid, exc)
        finally:
            self._workers.pop(sid, None)

    async def close(self) -> None:
        await tasks.cancel_and_wait(*self._workers.values())
