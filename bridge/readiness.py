"""What a readiness check answers, shared by the edges that define checks and the web
surface that serves ``/readyz``: a result starting with ``ok`` is fine, a ``Degraded`` one
is reported but keeps the bridge ready, anything else makes it unready."""

from __future__ import annotations


class Degraded(str):
    """A readiness result worth reporting that does not make the bridge unready."""

    __slots__ = ()


def is_ok(result: str) -> bool:
    return result.startswith("ok")
