"""Reloading the routing file (SIGHUP, ``POST /admin/routing/reload``): logged and counted."""

from __future__ import annotations

import logging

from bridge.core.routing import Router, RoutingFileError
from bridge.metrics import ROUTING_RELOADS

log = logging.getLogger("bridge.routing")


def reload_routing(router: Router, *, trigger: str) -> list[str]:
    """Re-read the routing file in force and swap it in atomically.

    Returns the problems (empty on success).  A broken file changes nothing: the rules in
    force stay, and the refusal is logged and counted."""
    if router.source is None:
        log.warning("routing reload (%s) ignored: ROUTING_FILE is not set", trigger)
        return ["no routing file to reload (ROUTING_FILE is not set)"]
    try:
        config = router.reload()
    except RoutingFileError as exc:
        ROUTING_RELOADS.labels(outcome="error").inc()
        log.error(
            "routing reload (%s) refused, the rules in force stay: %s",
            trigger,
            "; ".join(exc.problems),
        )
        return exc.problems
    ROUTING_RELOADS.labels(outcome="ok").inc()
    log.info(
        "routing reloaded (%s) from %s: %d rules%s",
        trigger,
        config.source,
        len(config.rules),
        ", business hours" if config.business_hours else "",
    )
    return []
