"""The satisfaction survey after a session: option, then "resolved?", then a remark.

What Udesk's ``survey_options`` ask for decides the steps: ``resolved_enabled`` adds the
resolved question; an option whose ``remark_option`` is ``required`` (with
``remark_enabled``) asks for a remark with a ForceReply prompt, and the customer's next text
is that remark.  The result goes to ``POST /im/sessions/survey`` (``robot_survey`` for urobot
sessions) exactly once: taps after that are answered, not sent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.core import recording
from bridge.core.model import Button, OutgoingItem
from bridge.core.ports import UdeskGateway
from bridge.core.texts import Texts
from bridge.store.tables import ButtonAction, Customer, ImSession, Survey, utcnow

Answer = Callable[[str, str | None], Awaitable[None]]


def _option(options: dict[str, Any], option_id: int) -> dict[str, Any]:
    show_type = str(options.get("show_type") or "")
    section = options.get({"exp": "expression"}.get(show_type, show_type))
    candidates = list((section or {}).get("options") or []) if isinstance(section, dict) else []
    candidates += list(options.get("options") or [])
    for option in candidates:
        if isinstance(option, dict) and str(option.get("id")) == str(option_id):
            return option
    return {}


def needs_remark(options: dict[str, Any], option_id: int) -> bool:
    return bool(options.get("remark_enabled")) and (
        _option(options, option_id).get("remark_option") == "required"
    )


class SurveyFlow:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        udesk: UdeskGateway,
        texts: Callable[[], Texts],
        answer: Answer,
    ) -> None:
        self.sessions = sessions
        self.udesk = udesk
        self.texts = texts
        self.answer = answer

    async def tapped(self, customer: Customer, callback_id: str, action: dict[str, Any]) -> None:
        """An option (``t=survey``) or the resolved answer (``t=survey_resolved``)."""
        texts = self.texts()
        lang = customer.language_code
        async with self.sessions.begin() as s:
            survey = await s.get(Survey, int(action["survey_id"]))
            im_session = await s.get(ImSession, survey.session_id) if survey else None
            if survey is None or im_session is None:
                await self.answer(callback_id, texts.get("button_expired", lang))
                return
            if survey.answered_at is not None:
                await self.answer(callback_id, texts.get("survey_already", lang))
                return
            if action["t"] == "survey":
                survey.chosen_option_id = int(action["option_id"])
            else:
                survey.resolved = int(action["value"])
            options = im_session.survey_options or {}
            if survey.chosen_option_id is None:
                await self.answer(callback_id, None)
                return
            if options.get("resolved_enabled") and survey.resolved is None:
                await self._ask_resolved(s, customer, survey, options)
                await self.answer(callback_id, None)
                return
            if needs_remark(options, survey.chosen_option_id) and survey.remark is None:
                survey.awaiting_remark = True
                prompt = str(options.get("remark") or texts.get("survey_remark_prompt", lang))
                await recording.to_telegram(
                    s,
                    customer,
                    OutgoingItem(kind="force_reply", html=prompt, plain=True),
                    dedup_key=f"survey:{survey.id}:remark",
                )
                await self.answer(callback_id, None)
                return
        await self._submit(customer, int(action["survey_id"]))
        await self.answer(callback_id, texts.get("survey_thanks", lang))

    async def _ask_resolved(
        self, s: AsyncSession, customer: Customer, survey: Survey, options: dict[str, Any]
    ) -> None:
        texts = self.texts()
        lang = customer.language_code
        resolved = options.get("resolved_options") or {}
        names = [o.get("option_name") for o in resolved.get("options") or [] if o]
        labels = [str(n) for n in names if n][:2] or ["Resolved", "Unresolved"]
        buttons = []
        for value, label in enumerate(labels):
            row = ButtonAction(
                customer_id=customer.id,
                action={"t": "survey_resolved", "survey_id": survey.id, "value": value},
            )
            s.add(row)
            await s.flush()
            buttons.append(Button(label[:60], {"id": row.id}))
        title = str(resolved.get("title") or texts.get("survey_resolved_title", lang))
        await recording.to_telegram(
            s,
            customer,
            OutgoingItem(kind="text", html=title, plain=True, buttons=[buttons]),
            dedup_key=f"survey:{survey.id}:resolved",
        )

    async def take_remark(self, customer: Customer, text: str) -> bool:
        """If a survey waits for this customer's remark, ``text`` is it; True if taken.
        Callers ask only when ``load_for_send`` said a remark is awaited (one query for
        every message); this reads it again under the transaction that takes it."""
        async with self.sessions.begin() as s:
            survey = await s.scalar(_AWAITING_REMARK, {"customer_id": customer.id})
            if survey is None:
                return False
            survey.remark = text[:1000]
            survey.awaiting_remark = False
            survey_id = survey.id
        await self._submit(customer, survey_id)
        async with self.sessions.begin() as s:
            await recording.say(
                s,
                self.texts(),
                customer,
                "survey_thanks",
                dedup_key=f"survey:{survey_id}:thanks",
            )
        return True

    async def _submit(self, customer: Customer, survey_id: int) -> None:
        async with self.sessions() as s:
            survey = await s.get(Survey, survey_id)
            im_session = await s.get(ImSession, survey.session_id) if survey else None
        if survey is None or im_session is None or survey.answered_at is not None:
            return
        option = int(survey.chosen_option_id or 0)
        if im_session.assign_type == "urobot":
            await self.udesk.robot_survey(
                customer.customer_token,
                int(im_session.urobot_session_id or im_session.im_sub_session_id or 0),
                option,
                int(im_session.robot_id or 0),
                int(im_session.scene_id or 0),
                survey.remark,
            )
        else:
            await self.udesk.survey(
                int(im_session.im_sub_session_id or 0), option, survey.remark, survey.resolved
            )
        async with self.sessions.begin() as s:
            row = await s.get(Survey, survey_id)
            if row is not None:
                row.answered_option_id = option
                row.answered_at = utcnow()


# The customer's latest unanswered survey that waits for a written remark; built once, as
# every text message asks.
_AWAITING_REMARK = (
    select(Survey)
    .join(ImSession, ImSession.id == Survey.session_id)
    .where(
        ImSession.customer_id == bindparam("customer_id"),
        Survey.awaiting_remark.is_(True),
        Survey.answered_at.is_(None),
    )
    .order_by(Survey.id.desc())
    .limit(1)
)
