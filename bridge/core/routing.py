"""Which Udesk session a customer gets: one object the rest of the core asks.

The rules live in an immutable ``RoutingConfig`` (built from the routing file by
``bridge.core.routing_file``).  ``Router`` holds the one in force and swaps it in a single
assignment on reload, so a decision always sees one whole version of the rules, and a broken
file never replaces a good one.

Without a routing file every session is ``assign_type: agent`` with no group (the contract).

Decisions, in order:

1. The first rule whose ``when`` matches gives the route; no match → ``default``.
   With ``want_agent`` (the customer asked for a person: /agent or the button) rules whose
   route is robot/urobot are skipped, so the first matching *agent* rule wins; if none
   matches, the default is used when it is an agent route, else a plain agent route with no
   group (Udesk assigns by its own rules).
2. Business hours apply to agent routes only (robots work around the clock).  Outside them,
   ``outside`` decides: ``agent`` → the route anyway; ``leave_message`` →
   ``Decision(action="leave_message")``; ``robot`` (or a route mapping) → that route.  A
   customer who asked for a person is not sent back to a robot: they get ``leave_message``
   (an ``outside`` route that is an agent route, e.g. a night shift group, is used).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from bridge.core.business_hours import BusinessHours
from bridge.core.ports import Route
from bridge.core.texts import FALLBACK_LANGUAGE, Texts

Action = Literal["session", "leave_message"]


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
    """A session to request, or an action instead of one (``leave_message``).

    ``open_hours`` is None without business hours; ``reason`` says why, for logs and
    ``routing explain``."""

    route: Route
    action: Action = "session"
    open_hours: bool | None = None
    reason: str = ""


class RoutingFileError(Exception):
    """A routing file that cannot be used; ``problems`` holds one ``file:line: message
    (hint)`` line each."""

    def __init__(self, problems: list[str], source: Path | None = None) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.source = source


def _norm_language(code: str) -> str:
    return code.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class Condition:
    """A rule's ``when``: every given key must match; a tuple means any of.  None = not
    given."""

    language: tuple[str, ...] | None = None
    start_param: tuple[str, ...] | None = None
    level: tuple[str, ...] | None = None
    tags: tuple[str, ...] | None = None
    chat_type: tuple[str, ...] | None = None

    def matches(self, c: CustomerContext) -> bool:
        if self.language is not None:
            if not c.language:
                return False
            code = _norm_language(c.language)
            if not any(code == p or code.startswith(p + "-") for p in self.language):
                return False
        if self.start_param is not None and c.start_param not in self.start_param:
            return False
        if self.level is not None and (c.level or "").strip().casefold() not in self.level:
            return False
        if self.tags is not None:
            mine = {t.strip().casefold() for t in c.tags}
            if not mine.intersection(self.tags):
                return False
        return not (self.chat_type is not None and (c.chat_type or "") not in self.chat_type)

    def describe(self) -> dict[str, list[str]]:
        keys = ("language", "start_param", "level", "tags", "chat_type")
        return {k: list(v) for k in keys if (v := getattr(self, k)) is not None}


@dataclass(frozen=True)
class Rule:
    name: str
    when: Condition
    route: Route
    line: int | None = None  # where it starts in the routing file


@dataclass(frozen=True)
class RoutingConfig:
    """One whole, validated version of the routing; never changed once built."""

    default: Route = field(default_factory=Route)
    rules: tuple[Rule, ...] = ()
    business_hours: BusinessHours | None = None
    outside_route: Route | None = None  # for outside: robot / a route mapping
    no_agent_online: Literal["leave_message", "robot"] = "leave_message"
    no_agent_online_route: Route | None = None  # for no_agent_online: robot / a mapping
    queue_max_wait: float | None = None
    texts: Texts = field(default_factory=Texts)
    fallback_language: str = FALLBACK_LANGUAGE
    text_overrides: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: Path | None = None
    loaded_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def match(
        self, context: CustomerContext, *, want_agent: bool = False
    ) -> tuple[Rule | None, Route]:
        """The rule that applies (None = the default) and its route, before business
        hours."""
        for rule in self.rules:
            if want_agent and rule.route.assign_type != "agent":
                continue
            if rule.when.matches(context):
                return rule, rule.route
        if want_agent and self.default.assign_type != "agent":
            return None, Route(assign_type="agent", rule_name="default (agent requested)")
        return None, self.default

    def describe(self) -> dict[str, Any]:
        """The routing in force, as JSON for ``GET /admin/routing``."""
        hours = self.business_hours
        return {
            "source": str(self.source) if self.source else None,
            "loaded_at": self.loaded_at.isoformat(),
            "default": self.default.params(),
            "rules": [
                {
                    "name": r.name,
                    "when": r.when.describe(),
                    "route": r.route.params(),
                    "line": r.line,
                }
                for r in self.rules
            ],
            "business_hours": hours.describe() if hours else None,
            "outside_route": self.outside_route.params() if self.outside_route else None,
            "no_agent_online": self.no_agent_online,
            "no_agent_online_route": (
                self.no_agent_online_route.params() if self.no_agent_online_route else None
            ),
            "queue": {"max_wait": self.queue_max_wait},
            "fallback_language": self.fallback_language,
            "texts_overridden": {k: list(v) for k, v in self.text_overrides.items()},
        }


class Router:
    """The routing in force.  The core keeps a reference to this object; reloads swap the
    config inside it in one assignment."""

    def __init__(
        self,
        config: RoutingConfig | None = None,
        *,
        load: Callable[[Path], RoutingConfig] | None = None,
    ) -> None:
        """``load``: reads and validates a routing file for ``reload`` (the router from
        ``routing_file.load_router`` has it; one without a file can still be reloaded
        from one when it is given)."""
        self._config = config or RoutingConfig()
        self._load = load

    # --- reload -------------------------------------------------------------------------

    def reload(self, path: Path | str | None = None) -> RoutingConfig:
        """Load ``path`` (default: the file in force) and put it in force, atomically.

        A broken file raises RoutingFileError and the old rules stay in force."""
        target = Path(path) if path is not None else self._config.source
        if target is None or self._load is None:
            raise RoutingFileError(["no routing file to reload (ROUTING_FILE is not set)"])
        config = self._load(target)
        self._config = config
        return config

    def replace(self, config: RoutingConfig) -> None:
        self._config = config

    # --- what is in force ---------------------------------------------------------------

    @property
    def config(self) -> RoutingConfig:
        return self._config

    @property
    def texts(self) -> Texts:
        return self._config.texts

    @property
    def no_agent_online(self) -> str:
        return self._config.no_agent_online

    @property
    def queue_max_wait(self) -> float | None:
        """Seconds a customer may wait in Udesk's queue; None = no limit."""
        return self._config.queue_max_wait

    @property
    def source(self) -> Path | None:
        return self._config.source

    @property
    def loaded_at(self) -> dt.datetime:
        return self._config.loaded_at

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._config.rules

    @property
    def default(self) -> Route:
        return self._config.default

    @property
    def business_hours(self) -> BusinessHours | None:
        return self._config.business_hours

    def is_open(self, now: dt.datetime) -> bool | None:
        """Within business hours?  None when the file sets none."""
        hours = self._config.business_hours
        return hours.is_open(now) if hours else None

    # --- decisions ----------------------------------------------------------------------

    def decide(
        self, context: CustomerContext, now: dt.datetime, *, want_agent: bool = False
    ) -> Decision:
        cfg = self._config  # one version of the rules for the whole decision
        rule, route = cfg.match(context, want_agent=want_agent)
        why = f"rule {rule.name!r}" if rule else "default"
        hours = cfg.business_hours
        if hours is None:
            return Decision(route, "session", None, why)
        open_now = hours.is_open(now)
        if open_now or route.assign_type != "agent":
            return Decision(route, "session", open_now, why)
        outside = hours.outside
        if outside == "agent":
            return Decision(route, "session", False, f"{why}; outside business hours: agent")
        if outside == "leave_message" or cfg.outside_route is None:
            return Decision(route, "leave_message", False, f"{why}; outside business hours")
        if want_agent and cfg.outside_route.assign_type != "agent":
            # They asked for a person; another robot would not be an answer.
            return Decision(route, "leave_message", False, f"{why}; outside business hours")
        return Decision(
            cfg.outside_route, "session", False, f"{why}; outside business hours: {outside}"
        )

    def when_no_agent(self, *, want_agent: bool = False) -> Decision:
        """What Udesk's 2002 (no agent online) leads to: ``leave_message``, or a robot
        session to open instead.  A customer who asked for a person gets leave_message."""
        cfg = self._config
        fallback = cfg.no_agent_online_route
        if cfg.no_agent_online == "robot" and fallback is not None and not want_agent:
            return Decision(fallback, "session", None, "no agent online: robot")
        return Decision(
            replace(cfg.default, rule_name="no agent online"),
            "leave_message",
            None,
            "no agent online",
        )
