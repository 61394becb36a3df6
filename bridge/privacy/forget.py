"""``/forget`` (``FORGET_COMMAND``): the outbound record a confirmed /forget becomes.

Intake turns the tap on the confirmation button into an outbound record of kind
``erase`` (``bridge.core.intake.FORGET_KIND``) on the customer's lock, so the erasure is
durable and runs after everything the person sent before it.  ``ForgetHandler`` is the
outbound queue's handler for that kind (``by_kind`` in ``parts``): it runs the erasure
(keeping only the record it is handling, which holds no more than ids and is blanked when
done) and tells the person.  An erasure Udesk interrupts is retried like any record; past
``DELIVERY_DEADLINE`` the record fails and ``udesk-bridge customers erase`` completes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bridge.core.errors import BridgeError
from bridge.core.model import OutgoingItem
from bridge.core.ports import TelegramGateway
from bridge.core.texts import Texts
from bridge.privacy.erase import Eraser
from bridge.store.dispatcher import Done, Fail, Outcome, Retry
from bridge.store.queue import Claimed
from bridge.store.tables import utcnow

log = logging.getLogger("bridge.privacy.forget")


class ForgetHandler:
    def __init__(
        self,
        eraser: Eraser,
        telegram: TelegramGateway,
        texts: Callable[[], Texts],
        *,
        deadline: float = 3600.0,
    ) -> None:
        self.eraser = eraser
        self.telegram = telegram
        self.texts = texts
        self.deadline = deadline

    async def handle(self, record: Claimed) -> Outcome:
        payload = record.payload
        if not payload.get("telegram_user_id"):
            return Fail("erase record without a telegram_user_id")
        report = await self.eraser.erase(
            int(payload["telegram_user_id"]), requested_by="telegram", keep_outbound=(record.id,)
        )
        if not report.complete:
            error = f"erasure {report.erasure_id} incomplete: {report.error}"
            if (utcnow() - record.created_at).total_seconds() > self.deadline:
                return Fail(error + "; finish it with `udesk-bridge customers erase`")
            return Retry(error)
        language = payload.get("language")
        callback = payload.get("callback_query_id")
        if callback:
            try:
                await self.telegram.answer_button(str(callback), None)
            except Exception as exc:  # an old callback query cannot be answered any more
                log.debug("answerCallbackQuery failed: %s", type(exc).__name__)
        chat_id = payload.get("chat_id")
        if chat_id:
            text = self.texts().get("forget_done", language)
            try:
                await self.telegram.show(
                    int(chat_id),
                    OutgoingItem(kind="text", html=text, plain=True),
                    language=language,
                    edit_message_id=None,
                )
            except BridgeError as exc:
                # Nothing is queued for a chat that no longer has a customer; it is done.
                log.info(
                    "erasure %s: confirmation not shown (%s)", report.erasure_id, type(exc).__name__
                )
        return Done({"payload": {}})
