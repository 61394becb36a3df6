"""The signed Udesk Open API client.

Every attempt (retries included) takes a token from the shared ``RateBudget`` at the
call's priority, signs with a fresh nonce, and maps Udesk's answer onto the taxonomy in
``bridge.udesk.errors``:

====================================================  ===================================
answer                                                result
====================================================  ===================================
code 1000                                             the typed answer
code 2001 on ``create_session``                       the answer, ``queued`` True
a code in ``errors.PERMANENT``                        its error, at once: 2002
                                                      ``UdeskNoAgentOnline``, 9200 (2062 on
                                                      ``message_preview``) ``UdeskSessionGone``,
                                                      2065 ``UdeskNotActivated``, the others
                                                      ``UdeskPermanentError`` (code, message)
code 429 or HTTP 429                                  ``UdeskQuotaExceeded``
code 1001 / 1002 (credentials; clock or nonce)        ``UdeskBadSignature``
HTTP 5xx; 2xx not JSON or without a code              ``UdeskServerError``
4xx not JSON (a proxy's page), no code, other codes   ``UdeskUnexpectedAnswer``
timeout                                               ``UdeskTimeoutError``
connection failure                                    ``UdeskConnectionError``
====================================================  ===================================

Only the ``PERMANENT`` codes are permanent; everything else is transient.
Transient errors are retried here with capped exponential backoff and full jitter, up to
``max_attempts`` attempts in all; 1001 is not, since refused credentials stay refused until
the operator acts (the caller's slower backoff waits for that).  Calls that could create a
duplicate on the vendor's side when repeated blindly (ticket creation, ticket reply, ticket
upload) are retried only when Udesk certainly did not act (quota refusal, connection never
established).

Logs (logger ``bridge.udesk``) name the method, the path, the code, the attempt and the
elapsed time; never the API token, the sign, the nonce, the query string or any body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
import yarl

from bridge import metrics
from bridge.udesk.budget import Priority, RateBudget
from bridge.udesk.errors import (
    CODE_BAD_SIGNATURE,
    CODE_NONCE_OR_TIMESTAMP,
    CODE_NOT_FOUND,
    CODE_OK,
    CODE_PREVIEW_SESSION_GONE,
    CODE_QUEUED,
    CODE_QUOTA_EXCEEDED,
    PERMANENT,
    UdeskBadSignature,
    UdeskConnectionError,
    UdeskError,
    UdeskPermanentError,
    UdeskQuotaExceeded,
    UdeskServerError,
    UdeskSessionGone,
    UdeskTimeoutError,
    UdeskTransientError,
    UdeskUnexpectedAnswer,
    result_label,
)
from bridge.udesk.signing import signed_params
from bridge.udesk.wire import (
    AgentStatusAnswer,
    AgentStatusQuery,
    AnswerSurveyRequest,
    CloseQueueQuery,
    CloseSessionQuery,
    CodeAnswer,
    CreateCustomerRequest,
    CreateSessionAnswer,
    CreateSessionRequest,
    CreateTicketAnswer,
    CreateTicketRequest,
    Customer,
    CustomerAnswer,
    CustomerFields,
    CustomerLookupQuery,
    CustomerLookupType,
    CustomerOnlineStateRequest,
    CustomerStatusAnswer,
    CustomerStatusQuery,
    DestroyCustomerAnswer,
    DestroySessionQuery,
    FlowRequest,
    MessageData,
    MessagePreviewRequest,
    MessageType,
    QueueStatusAnswer,
    QueueStatusQuery,
    RequestModel,
    RobotSurveyRequest,
    RobotUsefulRequest,
    SendMessageRequest,
    SurveyRequest,
    TicketCustomerReplyRequest,
    TicketDetailAnswer,
    TicketFields,
    TicketRepliesAnswer,
    TicketRepliesQuery,
    TicketReplyAnswer,
    TransferSurveyRequest,
    UnreadCustomerOfflineAnswer,
    UnreadCustomerOfflineQuery,
    UpdateCustomerRequest,
    UploadFileAnswer,
    UploadFileQuery,
)

__all__ = [
    "CODE_NOT_FOUND",
    "ROBOT_USEFUL_PATH",
    "UdeskClient",
    "redact_text",
    "redact_url",
]

log = logging.getLogger("bridge.udesk")

A = TypeVar("A", bound=CodeAnswer)

# im-open-api.txt documents "Robot Q&A Evaluation" without a path; this is the one used.
ROBOT_USEFUL_PATH = "/im/robot/useful"  # the same choice as the simulator

_DESTROY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# -- redaction ------------------------------------------------------------------------

_SENSITIVE_KEYS = frozenset(
    {
        "sign",
        "nonce",
        "email",
        "api_token",
        "token",
        "access_token",
        "secret",
        "secret_token",
        "password",
    }
)
_BOT_TOKEN = re.compile(r"/(file/)?bot[^/?#\s]+")
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: object) -> str:
    """``url`` fit for logs and error messages.

    Masks the values of sensitive query parameters (``sign``, ``nonce``, ``email``,
    tokens, secrets), any password in the authority, and a Telegram ``/bot<token>/``
    path segment.  Accepts ``str`` or ``yarl.URL``.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<unparseable url>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    path = _BOT_TOKEN.sub(lambda m: f"/{m.group(1) or ''}bot***", parts.path)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if k.lower() in _SENSITIVE_KEYS else v) for k, v in pairs],
            safe="*:/",
        )
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through ``redact_url``."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


# -- answer interpretation -------------------------------------------------------------


def _as_code(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _says_already_exists(message: str) -> bool:
    """Udesk's "this open_api_token is taken" (wording not documented; be generous, but
    not about the other identifiers a create may collide on)."""
    text = message.lower()
    if not any(w in text for w in ("exist", "duplicate", "already", "已存在", "重复")):
        return False
    return not any(
        w in text
        for w in ("email", "邮箱", "phone", "手机", "weixin", "wechat", "微信", "web_token")
    )


class _Failure(Exception):
    """Internal: an attempt failed; ``certainly_not_processed`` allows unsafe retries;
    ``retry_here`` False leaves a transient error to the caller's slower backoff."""

    def __init__(
        self,
        error: UdeskError,
        *,
        certainly_not_processed: bool = False,
        retry_here: bool = True,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.certainly_not_processed = certainly_not_processed
        self.retry_here = retry_here


class UdeskClient:
    """Typed access to the Udesk Open API (``base_url`` ends in ``/open_api_v1``).

    ``session`` is owned by the caller (one per process); ``budget`` is the one rate
    budget for all Udesk calls.
    """

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        *,
        session: aiohttp.ClientSession,
        budget: RateBudget,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        # Encoded once here (spaces, non-ASCII): requests reuse it in already-encoded URLs.
        self.base_url = str(yarl.URL(base_url.rstrip("/")))
        self._email = email
        self._email_query = urlencode({"email": email}, quote_via=quote)
        self._api_token = api_token
        self._session = session
        self.budget = budget
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()
        self._sleep = sleep or asyncio.sleep
        # Plain counters; metrics are wired to these elsewhere.
        self.calls = 0  # attempts sent
        self.retries = 0
        self.failures = 0  # calls that ended in an exception

    def __repr__(self) -> str:  # never the token
        return f"UdeskClient({redact_url(self.base_url)!r})"

    # -- the engine ---------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        answer_model: type[A],
        *,
        priority: Priority,
        query: RequestModel | Mapping[str, Any] | None = None,
        body: RequestModel | Mapping[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        ok_codes: Collection[int] = (CODE_OK,),
        preview: bool = False,
        idempotent: bool = True,
        max_attempts: int | None = None,
        budget_taken: float | None = None,
    ) -> A:
        """One API call with retries; ``path`` is relative to ``base_url``.

        ``query`` goes to the query string (with the signature), ``body`` is sent as JSON,
        ``data`` as raw bytes.  ``budget_taken``: the grant time of a token the caller
        already holds for the first attempt.
        """
        method = method.upper()
        query_params = _query_dict(query)
        json_body = body.to_wire() if isinstance(body, RequestModel) else body
        attempts = max_attempts or self.max_attempts
        url = f"{self.base_url}{path}"
        for attempt in range(1, attempts + 1):
            if budget_taken is not None and attempt == 1:
                granted_at: float | None = budget_taken
            else:
                granted_at = await self.budget.take(priority)
            started = time.monotonic()
            try:
                answer_body = await self._attempt(
                    method,
                    url,
                    path,
                    query_params,
                    json_body,
                    data,
                    content_type,
                    preview,
                    ok_codes,
                )
            except _Failure as failure:
                self.budget.restamp(granted_at)
                err = failure.error
                elapsed = time.monotonic() - started
                metrics.udesk_call(method, path, elapsed, result_label(err.code, err))
                retryable = (
                    isinstance(err, UdeskTransientError)
                    and failure.retry_here
                    and (idempotent or failure.certainly_not_processed)
                )
                if retryable and attempt < attempts:
                    delay = self._backoff(attempt)
                    self.retries += 1
                    log.warning(
                        "udesk %s %s failed: %s (code=%s attempt=%d/%d elapsed=%.3fs); "
                        "retrying in %.3fs",
                        method,
                        path,
                        type(err).__name__,
                        err.code,
                        attempt,
                        attempts,
                        elapsed,
                        delay,
                        extra=_log_extra(method, path, err.code, attempt, elapsed),
                    )
                    await self._sleep(delay)
                    continue
                self.failures += 1
                level = logging.WARNING if isinstance(err, UdeskTransientError) else logging.INFO
                log.log(
                    level,
                    "udesk %s %s failed: %s (code=%s attempt=%d/%d elapsed=%.3fs)",
                    method,
                    path,
                    type(err).__name__,
                    err.code,
                    attempt,
                    attempts,
                    elapsed,
                    extra=_log_extra(method, path, err.code, attempt, elapsed),
                )
                raise err from None
            except BaseException:
                self.budget.restamp(granted_at)  # cancelled: the token still counts from now
                raise
            self.budget.restamp(granted_at)  # the window counts from the end of the call
            elapsed = time.monotonic() - started
            code = _as_code(answer_body.get("code"))
            metrics.udesk_call(method, path, elapsed, result_label(code))
            log.debug(
                "udesk %s %s ok (code=%s attempt=%d elapsed=%.3fs)",
                method,
                path,
                code,
                attempt,
                elapsed,
                extra=_log_extra(method, path, code, attempt, elapsed),
            )
            try:
                return answer_model.model_validate(answer_body)
            except Exception as exc:  # pydantic.ValidationError; lenient models rarely fail
                # Udesk took the request (its code was acceptable) and said so in a shape we
                # cannot read: nothing proves a retry would fail, so it is not permanent.
                self.failures += 1
                raise UdeskUnexpectedAnswer(
                    f"{method} {path}: unexpected answer shape ({type(exc).__name__})",
                    code=code,
                    body=answer_body,
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(
        self,
        method: str,
        url: str,
        path: str,
        query: dict[str, str],
        json_body: Any,
        data: bytes | None,
        content_type: str | None,
        preview: bool,
        ok_codes: Collection[int],
    ) -> dict[str, Any]:
        # Fresh signature and nonce for every attempt: a nonce is single use.  The query
        # string is built here and the URL handed to aiohttp as already encoded: a params
        # dict makes yarl parse the URL, merge and re-quote every value, a fifth of the CPU
        # of a Udesk call.  The signature's own values (digits, hex, "v2") need no quoting
        # and the e-mail was quoted once, so only the call's own parameters are encoded.
        auth = signed_params(self._email, self._api_token)
        parts = [self._email_query]
        parts += [f"{key}={value}" for key, value in auth.items() if key != "email"]
        if query:
            parts.append(urlencode(query, quote_via=quote))
        target = yarl.URL(f"{url}?{'&'.join(parts)}", encoded=True)
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        self.calls += 1
        try:
            async with self._session.request(
                method,
                target,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
                **kwargs,
            ) as response:
                status = response.status
                raw = await response.read()
        except TimeoutError:
            raise _Failure(
                UdeskTimeoutError(f"{method} {path}: no answer within {self.timeout:g}s")
            ) from None
        except aiohttp.ClientConnectorError as exc:
            # The connection was never established: Udesk certainly did not act.
            raise _Failure(
                UdeskConnectionError(f"{method} {path}: cannot connect ({_safe_reason(exc)})"),
                certainly_not_processed=True,
            ) from None
        except aiohttp.ClientConnectionError as exc:
            raise _Failure(
                UdeskConnectionError(f"{method} {path}: connection failed ({_safe_reason(exc)})")
            ) from None
        except aiohttp.ClientError as exc:
            raise _Failure(
                UdeskServerError(f"{method} {path}: bad HTTP answer ({_safe_reason(exc)})")
            ) from None
        return _interpret(method, path, status, raw, preview=preview, ok_codes=ok_codes)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        return self._rng.uniform(0.0, max(ceiling, 0.0))

    # -- customers ----------------------------------------------------------------------

    async def create_customer(
        self,
        token: str,
        nick_name: str,
        description: str | None = None,
        lang: str | None = None,
        *,
        email: str | None = None,
        level: str | None = None,
        cellphones: list[str] | None = None,
        custom_fields: dict[str, str | list[str]] | None = None,
        tags: str | None = None,
        lang_field: str | None = None,
        fetch_existing: bool = True,
        priority: Priority = Priority.MESSAGE,
    ) -> CustomerAnswer:
        """POST /customers with ``open_api_token=token``.

        Udesk has no language attribute: ``lang`` is stored in the custom field named by
        ``lang_field`` when given, else appended to the tags as ``lang:<code>``.
        A customer that already exists for this token is success with
        ``already_existed=True`` (fetched by token when ``fetch_existing``).
        """
        fields = dict(custom_fields or {})
        tag_list = [t for t in (tags or "").split(",") if t]
        if lang:
            if lang_field:
                fields[lang_field] = lang
            else:
                tag_list.append(f"lang:{lang}")
        request = CreateCustomerRequest(
            customer=CustomerFields(
                nick_name=nick_name,
                open_api_token=token,
                description=description,
                email=email,
                level=level,
                cellphones=[(None, p) for p in cellphones] if cellphones else None,
                custom_fields=fields or None,
            ),
            tags=",".join(tag_list) or None,
        )
        try:
            return await self.request(
                "POST", "/customers", CustomerAnswer, priority=priority, body=request
            )
        except UdeskPermanentError as exc:
            if not _is_plain(exc) or not _says_already_exists(_message_of(exc.body)):
                raise
            answer = CustomerAnswer.model_validate(
                exc.body if isinstance(exc.body, dict) else {"code": exc.code}
            )
            answer.already_existed = True
            if answer.customer is None and fetch_existing:
                answer.customer = await self.get_customer_by_token(token, priority=priority)
            return answer

    async def get_customer(
        self, type: CustomerLookupType, content: str, *, priority: Priority = Priority.POLL
    ) -> Customer | None:
        """GET /customers/get_customer; None when Udesk has no such customer (2005)."""
        try:
            answer = await self.request(
                "GET",
                "/customers/get_customer",
                CustomerAnswer,
                priority=priority,
                query=CustomerLookupQuery(type=type, content=content),
            )
        except UdeskPermanentError as exc:
            if _is_plain(exc) and exc.code == CODE_NOT_FOUND:
                return None
            raise
        return answer.customer

    async def get_customer_by_token(
        self, token: str, *, priority: Priority = Priority.POLL
    ) -> Customer | None:
        return await self.get_customer("token", token, priority=priority)

    async def update_customer_by_token(
        self,
        token: str,
        *,
        nick_name: str | None = None,
        description: str | None = None,
        email: str | None = None,
        level: str | None = None,
        cellphones: list[tuple[int | None, str]] | None = None,
        custom_fields: dict[str, str | list[str]] | None = None,
        tags: str | None = None,
        priority: Priority = Priority.POLL,
    ) -> CustomerAnswer:
        """PUT /customers/update_customer?type=token&content=token (only given fields)."""
        return await self.request(
            "PUT",
            "/customers/update_customer",
            CustomerAnswer,
            priority=priority,
            query=CustomerLookupQuery(type="token", content=token),
            body=UpdateCustomerRequest(
                customer=CustomerFields(
                    nick_name=nick_name,
                    description=description,
                    email=email,
                    level=level,
                    cellphones=cellphones,
                    custom_fields=custom_fields,
                ),
                tags=tags,
            ),
        )

    async def destroy_customer(
        self,
        content: str | int,
        *,
        by: CustomerLookupType = "token",
        priority: Priority = Priority.POLL,
    ) -> DestroyCustomerAnswer:
        """DELETE /customers/destroy_customer?type=<by>&content=<content>."""
        return await self.request(
            "DELETE",
            "/customers/destroy_customer",
            DestroyCustomerAnswer,
            priority=priority,
            query=CustomerLookupQuery(type=by, content=str(content)),
        )

    # -- IM sessions --------------------------------------------------------------------

    async def create_session(
        self,
        customer_token: str,
        *,
        assign_type: str | None = None,
        agent_id: int | None = None,
        group_id: int | None = None,
        channel: str | None = None,
        robot_role_id: str | None = None,
        robot_id: int | None = None,
        scene_id: int | None = None,
        priority: Priority = Priority.MESSAGE,
    ) -> CreateSessionAnswer:
        """POST /im/sessions.  2001 → ``answer.queued``; 2002 → ``UdeskNoAgentOnline``."""
        request = CreateSessionRequest.model_validate(
            {
                "customer_token": customer_token,
                "assign_type": assign_type,
                "agent_id": agent_id,
                "group_id": group_id,
                "channel": channel,
                "robot_role_id": robot_role_id,
                "robot_id": robot_id,
                "scene_id": scene_id,
            }
        )
        return await self.request(
            "POST",
            "/im/sessions",
            CreateSessionAnswer,
            priority=priority,
            body=request,
            ok_codes=(CODE_OK, CODE_QUEUED),
        )

    async def close_session(
        self, session_id: int, *, priority: Priority = Priority.SURVEY
    ) -> CodeAnswer:
        """DELETE /im/sessions/:session_id (session_id also in the query, as documented)."""
        return await self.request(
            "DELETE",
            f"/im/sessions/{int(session_id)}",
            CodeAnswer,
            priority=priority,
            query=CloseSessionQuery(session_id=int(session_id)),
        )

    async def close_queue(
        self, customer_token: str, queue: str, *, priority: Priority = Priority.SURVEY
    ) -> CodeAnswer:
        """DELETE /im/sessions/close_queue: leave the queue named by the 2001 answer."""
        return await self.request(
            "DELETE",
            "/im/sessions/close_queue",
            CodeAnswer,
            priority=priority,
            query=CloseQueueQuery(customer_token=customer_token, queue=queue),
        )

    async def destroy_session(
        self,
        start_time: datetime | str,
        end_time: datetime | str,
        customer_id: int | None = None,
        *,
        priority: Priority = Priority.POLL,
    ) -> CodeAnswer:
        """DELETE /im/sessions/destroy_session: delete closed sessions created in the range.

        Datetimes are formatted as Udesk wants ("2022-05-19 19:50:33"); aware ones are
        used as given (Udesk reads them in the company's time zone, China time).
        """
        return await self.request(
            "DELETE",
            "/im/sessions/destroy_session",
            CodeAnswer,
            priority=priority,
            query=DestroySessionQuery(
                start_time=_udesk_time(start_time),
                end_time=_udesk_time(end_time),
                customer_id=customer_id,
            ),
        )

    async def queue_status(
        self, customer_token: str, *, priority: Priority = Priority.POLL
    ) -> QueueStatusAnswer:
        return await self.request(
            "GET",
            "/im/queue_status",
            QueueStatusAnswer,
            priority=priority,
            query=QueueStatusQuery(customer_token=customer_token),
        )

    async def customer_status(
        self,
        customer_token: str | None = None,
        *,
        web_token: str | None = None,
        sdk_token: str | None = None,
        session_key: str | None = None,
        priority: Priority = Priority.POLL,
    ) -> CustomerStatusAnswer:
        return await self.request(
            "GET",
            "/im/customer_status",
            CustomerStatusAnswer,
            priority=priority,
            query=CustomerStatusQuery(
                customer_token=customer_token,
                web_token=web_token,
                sdk_token=sdk_token,
                session_key=session_key,
            ),
        )

    async def agent_status(
        self, group_id: int | None = None, *, priority: Priority = Priority.POLL
    ) -> AgentStatusAnswer:
        return await self.request(
            "GET",
            "/im/agent_status",
            AgentStatusAnswer,
            priority=priority,
            query=AgentStatusQuery(group_id=group_id),
        )

    # -- IM messages --------------------------------------------------------------------

    async def send_message(
        self,
        customer_token: str,
        im_sub_session_id: int,
        message_id: str,
        type: MessageType = "message",
        data: MessageData | Mapping[str, Any] | str = "",
        robot_id: int | None = None,
        scene_id: int | None = None,
        urobot_session_id: int | None = None,
        *,
        agent_id: int | None = None,
        group_id: int | None = None,
        priority: Priority = Priority.MESSAGE,
    ) -> CodeAnswer:
        """POST /im/messages.  ``message_id`` makes a retried send idempotent at Udesk.

        ``data`` is a ``MessageData``, its dict, or just the content string.
        9200 → ``UdeskSessionGone``.
        """
        if isinstance(data, str):
            data = MessageData(content=data)
        elif not isinstance(data, MessageData):
            data = MessageData.model_validate(dict(data))
        request = SendMessageRequest(
            customer_token=customer_token,
            im_sub_session_id=im_sub_session_id,
            message_id=message_id,
            type=type,
            data=data,
            robot_id=robot_id,
            scene_id=scene_id,
            urobot_session_id=urobot_session_id,
            agent_id=agent_id,
            group_id=group_id,
        )
        return await self.request(
            "POST", "/im/messages", CodeAnswer, priority=priority, body=request
        )

    async def message_preview(self, session_id: int, content: str) -> bool:
        """PUT /im/sessions/:id/message_preview, if the budget can spare a call.

        False (nothing sent) when the budget refuses a preview; True once Udesk took it.
        Not retried: a preview is stale by then.  2062 → ``UdeskSessionGone``; 2065 →
        ``UdeskNotActivated``.  The 3-per-second-per-session limit is the caller's.
        """
        granted_at = self.budget.try_preview()
        if granted_at is None:
            log.debug("udesk preview for session dropped: budget tight")
            return False
        await self.request(
            "PUT",
            f"/im/sessions/{int(session_id)}/message_preview",
            CodeAnswer,
            priority=Priority.PREVIEW,
            body=MessagePreviewRequest(content=content),
            preview=True,
            max_attempts=1,
            budget_taken=granted_at,
        )
        return True

    async def unread_customer_offline(
        self,
        im_sub_session_id: int,
        customer_id: int,
        app_id: int | None = None,
        *,
        priority: Priority = Priority.POLL,
    ) -> UnreadCustomerOfflineAnswer:
        return await self.request(
            "GET",
            "/im/messages/unread_customer_offline",
            UnreadCustomerOfflineAnswer,
            priority=priority,
            query=UnreadCustomerOfflineQuery(
                im_sub_session_id=im_sub_session_id, customer_id=customer_id, app_id=app_id
            ),
        )

    async def customer_online_state(
        self, customer_token: str, state: int | bool, *, priority: Priority = Priority.POLL
    ) -> CodeAnswer:
        """POST /im/customer_online_state: 1 online, 0 offline."""
        return await self.request(
            "POST",
            "/im/customer_online_state",
            CodeAnswer,
            priority=priority,
            body=CustomerOnlineStateRequest.model_validate(
                {"customer_token": customer_token, "state": int(state)}
            ),
        )

    # -- surveys and robots -------------------------------------------------------------

    async def survey(
        self,
        im_sub_session_id: int,
        option_id: int,
        remark: str | None = None,
        resolved_state_v2: Literal[0, 1] | None = None,
        *,
        priority: Priority = Priority.SURVEY,
    ) -> CodeAnswer:
        """POST /im/sessions/survey: the customer rates the agent session."""
        return await self.request(
            "POST",
            "/im/sessions/survey",
            CodeAnswer,
            priority=priority,
            body=SurveyRequest(
                im_sub_session_id=im_sub_session_id,
                option_id=int(option_id),
                remark=remark,
                resolved_state_v2=resolved_state_v2,
            ),
        )

    async def robot_survey(
        self,
        customer_token: str,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
        remark: str | None = None,
        *,
        priority: Priority = Priority.SURVEY,
    ) -> CodeAnswer:
        """POST /im/sessions/robot_survey (urobot session; 2 satisfied, 3 average, 4 not)."""
        return await self.request(
            "POST",
            "/im/sessions/robot_survey",
            CodeAnswer,
            priority=priority,
            body=RobotSurveyRequest(
                customer_token=customer_token,
                im_sub_session_id=im_sub_session_id,
                option_id=option_id,
                robot_id=robot_id,
                scene_id=scene_id,
                remark=remark,
            ),
        )

    async def answer_survey(
        self,
        customer_token: str,
        message_id: int,
        im_sub_session_id: int,
        option_id: int,
        robot_id: int,
        scene_id: int,
        *,
        priority: Priority = Priority.SURVEY,
    ) -> CodeAnswer:
        """POST /im/messages/answer_survey (urobot answer; 1 satisfied, 2 not)."""
        return await self.request(
            "POST",
            "/im/messages/answer_survey",
            CodeAnswer,
            priority=priority,
            body=AnswerSurveyRequest(
                customer_token=customer_token,
                message_id=int(message_id),
                im_sub_session_id=im_sub_session_id,
                option_id=option_id,
                robot_id=robot_id,
                scene_id=scene_id,
            ),
        )

    async def transfer_survey(
        self,
        im_sub_session_id: int,
        robot_id: int,
        scene_id: int,
        *,
        priority: Priority = Priority.SURVEY,
    ) -> CodeAnswer:
        """POST /im/sessions/transfer_survey (urobot: the customer asked for a human)."""
        return await self.request(
            "POST",
            "/im/sessions/transfer_survey",
            CodeAnswer,
            priority=priority,
            body=TransferSurveyRequest(
                im_sub_session_id=im_sub_session_id, robot_id=robot_id, scene_id=scene_id
            ),
        )

    async def robot_useful(
        self,
        customer_token: str,
        message_id: str,
        question_id: int,
        useful: bool,
        *,
        priority: Priority = Priority.SURVEY,
    ) -> CodeAnswer:
        """Robot Q&A evaluation (``ROBOT_USEFUL_PATH``; the vendor's page names no path)."""
        return await self.request(
            "POST",
            ROBOT_USEFUL_PATH,
            CodeAnswer,
            priority=priority,
            body=RobotUsefulRequest(
                customer_token=customer_token,
                message_id=str(message_id),
                question_id=int(question_id),
                useful=useful,
            ),
        )

    async def flow(
        self,
        customer_token: str,
        im_sub_session_id: int,
        flow_id: int,
        robot_id: int,
        scene_id: int,
        *,
        priority: Priority = Priority.MESSAGE,
    ) -> CodeAnswer:
        """POST /im/messages/flow: the customer picked a urobot flow item."""
        return await self.request(
            "POST",
            "/im/messages/flow",
            CodeAnswer,
            priority=priority,
            body=FlowRequest(
                customer_token=customer_token,
                im_sub_session_id=im_sub_session_id,
                flow_id=int(flow_id),
                robot_id=robot_id,
                scene_id=scene_id,
            ),
        )

    # -- tickets ------------------------------------------------------------------------

    async def create_ticket(
        self,
        subject: str,
        content: str,
        *,
        customer_token: str | None = None,
        customer_id: int | None = None,
        priority_name: str | None = None,
        agent_group_name: str | None = None,
        template_id: int | None = None,
        tags: str | None = None,
        ticket_field: dict[str, str] | None = None,
        priority: Priority = Priority.MESSAGE,
    ) -> CreateTicketAnswer:
        """POST /tickets for the customer with this token (or id).

        Not retried on errors after which Udesk may have created it (timeout, 5xx).
        """
        if customer_token is not None and customer_id is not None:
            raise ValueError("give customer_token or customer_id, not both")
        lookup: dict[str, Any] = {}
        if customer_token is not None:
            lookup = {"type": "customer_token", "type_content": customer_token}
        elif customer_id is not None:
            lookup = {"type": "customer_id", "type_content": str(customer_id)}
        request = CreateTicketRequest(
            ticket=TicketFields.model_validate(
                {
                    "subject": subject,
                    "content": content,
                    "priority": priority_name,
                    "agent_group_name": agent_group_name,
                    "template_id": template_id,
                    "tags": tags,
                    "ticket_field": ticket_field,
                    **lookup,
                }
            )
        )
        return await self.request(
            "POST",
            "/tickets",
            CreateTicketAnswer,
            priority=priority,
            body=request,
            idempotent=False,
        )

    async def ticket_customer_reply(
        self,
        ticket_id: int,
        content: str,
        *,
        content_type: str = "text",
        attachment_ids: list[int] | None = None,
        priority: Priority = Priority.MESSAGE,
    ) -> TicketReplyAnswer:
        """POST /tickets/customer_reply (not retried when it may have been taken)."""
        return await self.request(
            "POST",
            "/tickets/customer_reply",
            TicketReplyAnswer,
            priority=priority,
            body=TicketCustomerReplyRequest.model_validate(
                {
                    "id": int(ticket_id),
                    "new_reply": content,
                    "content_type": content_type,
                    "attachment_ids": attachment_ids,
                }
            ),
            idempotent=False,
        )

    async def ticket_replies(
        self,
        ticket_id: int,
        *,
        page: int | None = None,
        per_page: int | None = None,
        priority: Priority = Priority.POLL,
    ) -> TicketRepliesAnswer:
        """GET /tickets/:id/replies."""
        return await self.request(
            "GET",
            f"/tickets/{int(ticket_id)}/replies",
            TicketRepliesAnswer,
            priority=priority,
            query=TicketRepliesQuery(page=page, per_page=per_page),
        )

    async def ticket_detail(
        self, ticket_id: int, *, priority: Priority = Priority.POLL
    ) -> TicketDetailAnswer:
        """GET /tickets/detail?id= (its status says when to stop polling replies)."""
        return await self.request(
            "GET",
            "/tickets/detail",
            TicketDetailAnswer,
            priority=priority,
            query={"id": int(ticket_id)},
        )

    async def upload_ticket_file(
        self,
        ticket_id: int,
        content: bytes,
        filename: str,
        *,
        mime_type: str | None = None,
        for_reply: bool = False,
        priority: Priority = Priority.MESSAGE,
    ) -> UploadFileAnswer:
        """POST /tickets/upload_file?ticket_id=&file_name=&type= with the raw bytes.

        ``for_reply``: /tickets/upload_file_for_reply instead, whose ``attachment_id`` is
        what ``ticket_customer_reply(attachment_ids=...)`` takes (within two hours).
        """
        path = "/tickets/upload_file_for_reply" if for_reply else "/tickets/upload_file"
        return await self.request(
            "POST",
            path,
            UploadFileAnswer,
            priority=priority,
            query=UploadFileQuery(ticket_id=int(ticket_id), file_name=filename, type=mime_type),
            data=bytes(content),
            content_type="application/octet-stream",
            idempotent=False,
        )


# -- module helpers --------------------------------------------------------------------


def _is_plain(exc: UdeskError) -> bool:
    """True for a plain ``UdeskPermanentError`` (not one of its specific subclasses)."""
    return type(exc) is UdeskPermanentError


def _message_of(body: Any) -> str:
    if isinstance(body, dict):
        parts = [body.get("message"), body.get("error")]
        exception = body.get("exception")
        if isinstance(exception, dict):
            parts.append(exception.get("message"))
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def _query_dict(query: RequestModel | Mapping[str, Any] | None) -> dict[str, str]:
    if query is None:
        return {}
    if isinstance(query, RequestModel):
        return query.to_query()
    out: dict[str, str] = {}
    for key, value in query.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _udesk_time(value: datetime | str) -> str:
    return value.strftime(_DESTROY_TIME_FORMAT) if isinstance(value, datetime) else value


def _safe_reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact_text(str(exc))[:200]}"


def _log_extra(
    method: str, path: str, code: int | None, attempt: int, elapsed: float
) -> dict[str, Any]:
    return {
        "udesk_method": method,
        "udesk_path": path,
        "udesk_code": code,
        "udesk_attempt": attempt,
        "udesk_elapsed": round(elapsed, 6),
    }


def _interpret(
    method: str,
    path: str,
    status: int,
    raw: bytes,
    *,
    preview: bool,
    ok_codes: Collection[int],
) -> dict[str, Any]:
    """The answer body when its code is acceptable; else ``_Failure``."""
    where = f"{method} {path}"
    try:
        body = json.loads(raw) if raw.strip() else None
    except (ValueError, RecursionError):
        body = None
    code = _as_code(body.get("code")) if isinstance(body, dict) else None
    if status == 429 or code == CODE_QUOTA_EXCEEDED:
        raise _Failure(
            UdeskQuotaExceeded(f"{where}: quota exceeded", code=CODE_QUOTA_EXCEEDED, body=body),
            certainly_not_processed=True,
        )
    if status >= 500:
        raise _Failure(UdeskServerError(f"{where}: HTTP {status}", code=code, body=body))
    if not isinstance(body, dict) or code is None:
        if 200 <= status < 300:
            what = "without a code" if isinstance(body, dict) else "not a JSON object"
            raise _Failure(UdeskServerError(f"{where}: answer {what}", body=body))
        # Not Udesk's verdict on the request: a proxy's, firewall's or load balancer's
        # error page (403, 404, 408 in HTML) comes and goes with the network in between.
        raise _Failure(UdeskUnexpectedAnswer(f"{where}: HTTP {status}, not a Udesk answer"))
    if code in ok_codes:
        return body
    message = _message_of(body) or f"HTTP {status}"
    text = f"{where}: {message}"[:500]
    if code in (CODE_BAD_SIGNATURE, CODE_NONCE_OR_TIMESTAMP):
        # Refused before Udesk looked at the request, so even unsafe calls may repeat it.  A
        # refused credential is not fixed within this call: the caller's backoff waits.
        raise _Failure(
            UdeskBadSignature(text, code=code, body=body),
            certainly_not_processed=True,
            retry_here=code != CODE_BAD_SIGNATURE,
        )
    permanent = PERMANENT.get(code)
    if permanent is None:
        raise _Failure(UdeskUnexpectedAnswer(text, code=code, body=body))
    error_class = permanent.error
    if preview and code == CODE_PREVIEW_SESSION_GONE:
        error_class = UdeskSessionGone
    raise _Failure(error_class(text, code=code, body=body))
