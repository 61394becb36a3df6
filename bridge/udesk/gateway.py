"""The core's ``UdeskGateway`` on our signed client: Udesk's answers in the core's terms."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bridge.core import errors as core
from bridge.core.model import AgentMessage
from bridge.core.ports import MessageTarget, Route, SessionOpened, TicketReply
from bridge.udesk import errors as udesk
from bridge.udesk.budget import Priority
from bridge.udesk.client import CODE_NOT_FOUND, UdeskClient
from bridge.udesk.push_translate import agent_message


class _Translate:
    """Map the Udesk error taxonomy onto the core's, around one call."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: Any, exc: BaseException | None, _tb: Any) -> bool:
        if exc is None or not isinstance(exc, udesk.UdeskError):
            return False
        message = str(exc)
        if isinstance(exc, udesk.UdeskSessionGone):
            raise core.SessionGone(message) from None
        if isinstance(exc, udesk.UdeskNoAgentOnline):
            raise core.NoAgentOnline(message) from None
        if isinstance(exc, udesk.UdeskNotActivated):
            raise core.PreviewUnavailable(message) from None
        if isinstance(exc, udesk.UdeskTransientError):
            raise core.TransientError(message) from None
        raise core.PermanentError(message) from None


_translate = _Translate()


class UdeskGateway:
    def __init__(self, client: UdeskClient) -> None:
        self.client = client

    async def ensure_customer(
        self, token: str, *, nick_name: str, description: str, lang: str | None
    ) -> int | None:
        async with _translate:
            answer = await self.client.create_customer(
                token, nick_name[:255], description=description[:255], lang=lang
            )
        return answer.customer.id if answer.customer else None

    async def update_customer(self, token: str, *, nick_name: str) -> None:
        async with _translate:
            await self.client.update_customer_by_token(token, nick_name=nick_name[:255])

    async def open_session(self, token: str, route: Route) -> SessionOpened:
        async with _translate:
            answer = await self.client.create_session(
                token,
                assign_type=route.assign_type,
                agent_id=route.agent_id,
                group_id=route.group_id,
                channel=route.channel,
                robot_role_id=route.robot_role_id,
                robot_id=route.robot_id,
                scene_id=route.scene_id,
            )
        if answer.queued:
            return SessionOpened("queued", queue_name=answer.queue, position=answer.position or 0)
        if answer.urobot is not None:
            info = answer.urobot
            suggestions = [
                q.question for group in info.top_ask for q in group.options_list if q.question
            ]
            return SessionOpened(
                "urobot",
                urobot_session_id=info.session_id,
                welcome_html=info.hello_word or info.leading_word,
                suggestions=suggestions,
            )
        if answer.robot is not None:
            return SessionOpened("robot", welcome_html=answer.robot.welcome_message)
        agent = answer.agent
        if agent is None:
            if answer.assign_type == "robot":
                return SessionOpened("robot")
            raise core.TransientError("Udesk answered a session request without assign_info")
        survey = agent.survey_options.model_dump(by_alias=True) if agent.survey_options else None
        return SessionOpened(
            "agent",
            im_sub_session_id=agent.im_sub_session_id,
            agent_id=agent.agent_id,
            agent_name=agent.agent_name,
            survey_options=survey,
        )

    async def send_message(
        self,
        token: str,
        target: MessageTarget,
        *,
        message_id: str,
        type: str,
        content: str,
        filename: str | None = None,
    ) -> None:
        data: dict[str, Any] = {"content": content}
        if filename:
            data["filename"] = filename
        async with _translate:
            await self.client.send_message(
                token,
                target.im_sub_session_id,
                message_id,
                type=type,  # type: ignore[arg-type]
                data=data,
                robot_id=target.robot_id,
                scene_id=target.scene_id,
                urobot_session_id=target.urobot_session_id,
            )

    async def close_session(self, im_sub_session_id: int) -> None:
        async with _translate:
            await self.client.close_session(im_sub_session_id)

    async def leave_queue(self, token: str, queue_name: str) -> None:
        async with _translate:
            await self.client.close_queue(token, queue_name)

    async def queue_position(self, token: str) -> tuple[str, int]:
        async with _translate:
            answer = await self.client.queue_status(token)
        return answer.status or "", int(answer.count or 0)

    async def preview(self, im_sub_session_id: int, content: str) -> bool:
        async with _translate:
            return await self.client.message_preview(im_sub_session_id, content)

    async def survey(
        self, im_sub_session_id: int, option_id: int, remark: str | None, resolved: int | None
    ) -> None:
        async with _translate:
            await self.client.survey(
                im_sub_session_id,
                option_id,
                remark=remark,
                resolved_state_v2=resolved if resolved in (0, 1) else None,  # type: ignore[arg-type]
            )

    async def robot_survey(
        self,
        token: str,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
        remark: str | None,
    ) -> None:
        async with _translate:
            await self.client.robot_survey(
                token, im_sub_session_id, option_id, robot_id, scene_id, remark=remark
            )

    async def answer_survey(
        self,
        token: str,
        message_id: int,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
    ) -> None:
        async with _translate:
            await self.client.answer_survey(
                token, message_id, im_sub_session_id, option_id, robot_id, scene_id
            )

    async def robot_useful(
        self, token: str, message_id: str, question_id: int, useful: bool
    ) -> None:
        async with _translate:
            await self.client.robot_useful(token, message_id, question_id, useful)

    async def transfer_survey(self, im_sub_session_id: int, robot_id: int, scene_id: int) -> None:
        async with _translate:
            await self.client.transfer_survey(im_sub_session_id, robot_id, scene_id)

    async def flow(
        self, token: str, im_sub_session_id: int, flow_id: int, robot_id: int, scene_id: int
    ) -> None:
        async with _translate:
            await self.client.flow(token, im_sub_session_id, flow_id, robot_id, scene_id)

    async def customer_online(self, token: str, online: bool) -> None:
        async with _translate:
            await self.client.customer_online_state(token, 1 if online else 0)

    async def create_ticket(self, token: str, subject: str, content: str) -> int:
        async with _translate:
            answer = await self.client.create_ticket(subject[:255], content, customer_token=token)
        if answer.ticket_id is None:
            raise core.PermanentError("Udesk created a ticket without an id")
        return int(answer.ticket_id)

    async def ticket_reply(self, ticket_id: int, content: str) -> None:
        async with _translate:
            await self.client.ticket_customer_reply(ticket_id, content, content_type="html")

    async def attach_to_ticket(
        self, ticket_id: int, data: bytes, filename: str, mime_type: str
    ) -> None:
        async with _translate:
            await self.client.upload_ticket_file(ticket_id, data, filename, mime_type=mime_type)

    async def ticket_replies(self, ticket_id: int) -> list[TicketReply]:
        async with _translate:
            answer = await self.client.ticket_replies(ticket_id, per_page=100)
        return [
            TicketReply(
                reply_id=int(r.id),
                content=r.content or "",
                internal=(r.function_type or "").startswith("intern"),
                from_customer=r.from_customer,
            )
            for r in answer.replies
            if r.id is not None
        ]

    async def ticket_finished(self, ticket_id: int) -> bool:
        async with _translate:
            answer = await self.client.ticket_detail(ticket_id)
        return answer.finished

    async def unread_agent_messages(
        self, im_sub_session_id: int, customer_id: int
    ) -> list[AgentMessage]:
        async with _translate:
            answer = await self.client.unread_customer_offline(
                im_sub_session_id, customer_id, priority=Priority.POLL
            )
        found = []
        for raw in answer.unread_messages:
            message = agent_message(raw.model_dump(by_alias=True))
            if message is not None:
                found.append(message)
        return found

    async def find_customer_id(self, token: str) -> int | None:
        """The Udesk id of the customer with this ``open_api_token``; None if there is none."""
        async with _translate:
            customer = await self.client.get_customer_by_token(token)
        return customer.id if customer is not None else None

    async def destroy_im_sessions(
        self, customer_id: int, start: dt.datetime, end: dt.datetime
    ) -> None:
        """Delete the customer's closed IM sessions created between ``start`` and ``end``."""
        async with _translate:
            await self.client.destroy_session(start, end, customer_id)

    async def destroy_customer(self, token: str) -> bool:
        """Delete the customer; False when Udesk has no such customer (2005)."""
        async with _translate:
            try:
                await self.client.destroy_customer(token, by="token")
            except udesk.UdeskPermanentError as exc:
                if type(exc) is udesk.UdeskPermanentError and exc.code == CODE_NOT_FOUND:
                    return False
                raise
        return True
