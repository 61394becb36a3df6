"""``udesk-bridge routing explain`` and the routing half of ``check-config``.

Both work from the routing file alone: ``--routing-file``, else ROUTING_FILE, else the
``routing_file`` key of ``--config``; the other settings need not be valid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from bridge.core import routing_file
from bridge.core.business_hours import DAYS
from bridge.core.routing import CustomerContext, Router, RoutingFileError
from bridge.settings import SettingsError, load_yaml

PLACEHOLDER_TOKEN = "<customer_token>"


def routing_file_from(explicit: Path | None, config_file: Path | None) -> Path | None:
    """Where the routing file is, without needing the other settings."""
    if explicit is not None:
        return explicit
    env = os.environ.get("ROUTING_FILE")
    if env:
        return Path(env)
    if config_file is not None:
        try:
            value = load_yaml(config_file).get("routing_file")
        except SettingsError:
            return None  # reported with the settings
        if value:
            return Path(str(value))
    return None


def load_router(path: Path | None) -> Router:
    """The router for ``path`` (the built-in default for None); RoutingFileError if broken."""
    return routing_file.load_router(path) if path is not None else Router()


def check_routing(path: Path | None) -> tuple[list[str], list[str]]:
    """(problems, summary lines) for check-config."""
    if path is None:
        return [], ["routing: no ROUTING_FILE (every session: assign_type agent, no group)"]
    try:
        router = routing_file.load_router(path)
    except RoutingFileError as exc:
        return exc.problems, []
    cfg = router.config
    lines = [f"routing: {path}: {len(cfg.rules)} rule(s), default {_route_text(cfg.default)}"]
    if cfg.business_hours:
        hours = cfg.business_hours
        lines.append(f"  business hours: {hours.timezone.key}, outside: {hours.outside}")
    lines.append(f"  no agent online: {cfg.no_agent_online}")
    if cfg.queue_max_wait:
        lines.append(f"  queue max wait: {cfg.queue_max_wait:g}s")
    if cfg.text_overrides:
        langs = ", ".join(f"{k} ({len(v)})" for k, v in sorted(cfg.text_overrides.items()))
        lines.append(f"  text overrides: {langs}")
    return [], lines


def _route_text(route: Any) -> str:
    return " ".join(f"{k}={v}" for k, v in route.params().items())


def session_request(route: Any) -> dict[str, Any]:
    """The exact ``POST /im/sessions`` body the bridge sends for ``route``."""
    from bridge.udesk.wire import CreateSessionRequest

    return CreateSessionRequest.model_validate(
        {"customer_token": PLACEHOLDER_TOKEN, **route.params()}
    ).to_wire()


def parse_at(value: str | None, router: Router) -> dt.datetime:
    """``--at``: ISO 8601; without an offset it is read in the business hours' time zone
    (UTC without business hours).  Default: now."""
    if not value:
        return dt.datetime.now(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--at {value!r} is not a date and time like 2026-11-25T20:00+08:00"
        ) from None
    if moment.tzinfo is None:
        hours = router.business_hours
        moment = moment.replace(tzinfo=hours.timezone if hours else dt.UTC)
    return moment


def explain(
    router: Router,
    context: CustomerContext,
    at: dt.datetime,
    *,
    want_agent: bool = False,
) -> str:
    cfg = router.config
    out: list[str] = []
    source = str(cfg.source) if cfg.source else "none (built-in: assign_type agent, no group)"
    out.append(f"routing file: {source}")
    given = {
        "language": context.language,
        "start_param": context.start_param,
        "level": context.level,
        "tags": ",".join(context.tags) or None,
        "chat_type": context.chat_type,
    }
    out.append("customer: " + " ".join(f"{k}={v if v else '-'}" for k, v in given.items()))
    if want_agent:
        out.append("asked for a person: yes (robot rules are skipped)")
    out.append(f"at: {at.isoformat()}")

    rule, route = cfg.match(context, want_agent=want_agent)
    if rule is not None:
        where = f", line {rule.line}" if rule.line else ""
        index = cfg.rules.index(rule)
        out.append(f"rule: {rule.name!r} (rules[{index}]{where})")
    else:
        out.append(f"rule: none matched; default ({_route_text(route)})")

    hours = cfg.business_hours
    if hours is None:
        out.append("business hours: none set (always open)")
    else:
        local = hours.local(at)
        stamp = f"{DAYS[local.weekday()].capitalize()} {local:%Y-%m-%d %H:%M} {hours.timezone.key}"
        if hours.is_open(at):
            out.append(f"business hours: within ({stamp})")
        else:
            opens = hours.next_open(at)
            later = ""
            if opens:
                later = f"; opens {DAYS[opens.weekday()].capitalize()} {opens:%Y-%m-%d %H:%M}"
            out.append(f"business hours: outside ({stamp}{later}); outside: {hours.outside}")
            if route.assign_type != "agent":
                out.append("  (robot routes ignore business hours)")

    decision = router.decide(context, at, want_agent=want_agent)
    out.append(f"decision: {decision.action} ({decision.reason})")
    if decision.action == "session":
        out.append(f"session request: POST /im/sessions (rule_name {decision.route.rule_name!r})")
        out.append(json.dumps(session_request(decision.route), indent=2, ensure_ascii=False))
    else:
        out.append("session request: none; the customer is asked to leave a message")
        out.append("within business hours it would be: POST /im/sessions")
        out.append(json.dumps(session_request(route), indent=2, ensure_ascii=False))
    return "\n".join(out)
