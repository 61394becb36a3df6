"""Webhook delivery: POST pending updates, one at a time and in order, until each gets a 2xx.

Telegram keeps an undelivered update at the head of the queue and retries with growing
pauses, reporting the latest failure in getWebhookInfo. The simulator does the same with
short pauses (``retry_delay`` doubling up to ``max_retry_delay``) so tests stay fast.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from .simulator import TelegramSimulator


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None = None
    max_connections: int = 40
    ip_address: str | None = None
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    deliveries: list[dict[str, Any]] = field(default_factory=list)  # (update_id, status)

    def info(self, pending: int) -> dict[str, Any]:
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.ip_address:
            data["ip_address"] = self.ip_address
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message
        if self.allowed_updates is not None:
            data["allowed_updates"] = self.allowed_updates
        return data


def _describe_failure(exc: BaseException) -> str:
    # Wording close to what getWebhookInfo shows for the same failures on Telegram.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "Connection refused"
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "Read timeout expired"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "Connection closed by the remote side"
    return f"{type(exc).__name__}: {exc}"


async def deliver_forever(sim: TelegramSimulator) -> None:
    """The delivery loop; runs as a task while the sim's app is serving."""
    delay = sim.webhook_retry_delay
    timeout = aiohttp.ClientTimeout(total=sim.webhook_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            config = sim.webhook
            if config is None or not sim.updates:
                await sim.wait_changed(None)
                continue
            update = sim.updates[0]
            headers = {}
            if config.secret_token:
                headers["X-Telegram-Bot-Api-Secret-Token"] = config.secret_token
            error: str | None = None
            status: int | None = None
            try:
                async with session.post(config.url, json=update, headers=headers) as response:
                    status = response.status
                    await response.read()
                    if not 200 <= status < 300:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _describe_failure(exc)
            config.deliveries.append(
                {"update_id": update["update_id"], "status": status, "error": error}
            )
            if error is None:
                sim.stats["webhook_deliveries"] += 1
                # The queue may have been reset or confirmed meanwhile: drop by identity.
                if sim.updates and sim.updates[0] is update:
                    sim.updates.pop(0)
                sim.notify()
                delay = sim.webhook_retry_delay
                continue
            sim.stats["webhook_failures"] += 1
            config.last_error_date = int(time.time())
            config.last_error_message = error
            sim.notify()
            await asyncio.sleep(delay)
            delay = min(delay * 2, sim.webhook_max_retry_delay)
