"""Which Udesk session a customer gets: one function the rest of the core asks.

Without a routing file every session is ``assign_type: agent`` with no group (the contract).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from bridge.core.ports import Route
from bridge.core.texts import Texts


@dataclass(frozen=True)
class CustomerContext:
    """What rules can look at."""

    language: str | None = None
    start_param: str | None = None
    level: str | None = None
    tags: tuple[str, ...] = ()
    chat_type: str = "private"


@dataclass(frozen=True)
class Decision:
    """A session to request, or an action instead of one (``leave_message``)."""

    route: Route
    action: str = "session"  # session | leave_message


@dataclass
class Router:
    default: Route = field(default_factory=Route)
    no_agent_online: str = "leave_message"
    texts: Texts = field(default_factory=Texts)

    def decide(
        self, context: CustomerContext, now: dt.datetime, *, want_agent: bool = False
    ) -> Decision:
        route = self.default
        if want_agent and route.assign_type != "agent":
            route = Route(assign_type="agent", rule_name=f"{route.rule_name} (agent requested)")
        return Decision(route=route)
