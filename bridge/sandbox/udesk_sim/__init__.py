"""A Udesk Open API simulator: an aiohttp application that answers like Udesk does in
``udesk-docs`` (HTTP 200, JSON ``code``, 1000 = success) and pushes like Udesk pushes, so the
bridge's real client can be tested over loopback and the sandbox needs no Udesk account.

Serving it::

    sim = UdeskSimulator(email="admin@example.com", api_token="tok", push_url=None)
    sim.push_url = "http://127.0.0.1:8080/udesk/push/SECRET"   # may be set at any time
    app = sim.app       # Open API under /open_api_v1/..., control API under /_sim/...
    # UDESK_API_URL = f"http://127.0.0.1:{port}/open_api_v1"
    # or: python -m bridge.sandbox.udesk_sim --port 8090 --agent 1:Tom

Settings (attributes, or ``sim.configure(**kw)``, or POST /_sim/config): ``push_url``,
``push_enabled`` (False: pushes fail without trying), ``push_timeout`` (5 s), ``push_delay``,
``preview_activated`` (False: 2065), ``preview_enforce_limit`` (the 4th preview within a
second answers 429), ``quota_per_minute`` (None = off; over it: ``{"code": 429}``),
``auto_assign`` (a freed slot takes the next queued customer; default off, use
``advance_queue``), ``survey_enabled``, ``survey_show_type`` (text | expression | star),
``welcome_message``; also ``urobots`` and ``urobot_flows``.

Python controls (``async`` ones push and wait for the push's outcome):

- ``set_agent(agent_id, name, online=True, capacity=3, group_id=None, *, avatar="",
  nick="", status=None) -> Agent``
- ``await agent_reply(customer_token, content, type="message", **data) -> message_id``
- ``await robot_reply(customer_token, answer, *, question="", question_id=None,
  gus_list=None, relate_list=None, third_url=...) -> message_id``
- ``await urobot_reply(customer_token, ans_content, *, ans_type=1, hit_question="",
  suggest=None, flow_id=None, session_id=None) -> logId``
- ``await transfer(customer_token, to_agent_id) -> Session`` (the new one)
- ``await close_session(customer_token, survey=True, *, close_type="normal",
  content="Session closed") -> Session``
- ``await advance_queue() -> list[Session]``
- ``inject_fault(path_prefix="/", kind="http_500", *, count=None, duration=None,
  delay=None, method=None) -> Fault``; ``clear_faults()``. Kinds: ``http_NNN`` (a
  proxy's HTML error page), ``code_NNNN`` (that Udesk code, not handled), ``clock_skew``
  (1002 "timestamp expired"), ``timeout`` (handled, answer held ``delay``=30 s),
  ``latency`` (``delay``=1 s, then handled), ``quota``, ``session_gone``, ``assigning``.
  Faults apply after authentication.
- ``await ticket_reply(ticket_id, content, internal=False, agent_id=None) -> TicketReply``;
  ``set_ticket_status(ticket_id, "resolved") -> Ticket``
- ``await field_push(url, payload)``, ``await push_read_status(session_id, message_ids)``,
  ``await push(body)`` -> PushAttempt
- ``await drain()``: wait for background pushes (those that follow an API answer, such as
  start_session after POST /im/sessions, or robot answers after POST /im/messages)
- ``await close()``: done by the app's cleanup when served.

Observations (plain dataclasses from ``state.py``): ``calls`` (RecordedCall: method, path
after /open_api_v1, query without auth params, body, code, http_status, time, fault),
``calls_to(prefix, method=None)``, ``messages_for(customer_token)`` and
``customer_messages`` (accepted customer messages, in order), ``duplicate_messages``
(repeated message_id attempts: answered 1000, not recorded twice), ``agent_messages``
(pushed agent messages with ``delivered``/``read``), ``previews``,
``preview_rate_violations`` (>3 previews for one session within 1 s), ``surveys`` and
``hits``, ``push_log`` (PushAttempt: kind, url, body, status or error), ``customers``
(id -> Customer; ``customer_by_token``), ``sessions`` (id -> Session; ``session_of``),
``queue``, ``tickets``, ``attachments``, ``abandoned_queues``, ``destroyed_sessions``,
``errors`` (simulator bugs; should stay empty).

Control HTTP API (JSON, unsigned; errors: 404 unknown thing, 400 bad input):
GET /_sim/state, POST /_sim/config, GET /_sim/calls?path_prefix=&since=,
GET /_sim/messages?customer_token=, GET /_sim/previews, GET /_sim/push_log,
GET /_sim/surveys, GET|POST /_sim/agents {agent_id, name, online, capacity, group_id,
avatar, status}, POST /_sim/agent_reply {customer_token, content, type, data},
POST /_sim/robot_reply {customer_token, answer, question, question_id},
POST /_sim/urobot_reply {customer_token, ans_content, ans_type, hit_question, suggest,
flow_id}, POST /_sim/transfer {customer_token, to_agent_id}, POST /_sim/close
{customer_token, survey, close_type}, POST /_sim/advance_queue, GET|POST|DELETE
/_sim/faults {path_prefix, kind, count, duration, delay, method},
POST /_sim/tickets/{id}/reply {content, internal, agent_id}, POST /_sim/tickets/{id}/status
{status}, POST /_sim/field_push {url, payload}, POST /_sim/read_status {session_id,
message_ids}, POST /_sim/push {body}, POST /_sim/drain, GET /_sim/files/{id}/{name}
(uploaded ticket attachments).

Codes where the docs are silent (see ``bridge.udesk.errors``): bad email/signature 1001,
stale timestamp (> 300 s) or nonce reused within 15 min 1002, quota 429; a second customer
with the same open_api_token 2000 "Unknown error" (exception "open_api_token duplicate:
X", like the documented web_token one); malformed message_id, wrong message type,
malformed parameters 2000; missing parameters 2062 "Missing parameters"; unknown urobot,
scene or flow 2005; -3 message from a customer neither queued nor in session, DELETE of
an unknown or closed session, unread query for an unknown session 9200; close_queue for
a customer not in that queue 9200 "Not in queue"; survey option not offered 2000. The
robot Q&A usefulness evaluation has no documented path: POST /im/robot/useful.
"""

from .simulator import UdeskSimulator
from .state import SimError

__all__ = ["SimError", "UdeskSimulator"]
