"""Run the simulator alone: ``python -m bridge.sandbox.udesk_sim --port 8090 --agent 1:Tom``,
then script it through /_sim/ (a test driving a subprocess, a browser console)."""

from __future__ import annotations

import argparse

from aiohttp import web

from .simulator import UdeskSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge.sandbox.udesk_sim")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--email", default="admin@example.com")
    parser.add_argument("--api-token", default="tok")
    parser.add_argument("--push-url", default=None, help="the bridge's Receiving Message URL")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="ID:NAME[:CAPACITY[:GROUP]]",
        help="an online agent; repeatable",
    )
    args = parser.parse_args(argv)
    sim = UdeskSimulator(email=args.email, api_token=args.api_token, push_url=args.push_url)
    for spec in args.agent:
        agent_id, name, *rest = spec.split(":")
        sim.set_agent(
            int(agent_id),
            name,
            capacity=int(rest[0]) if rest else 3,
            group_id=int(rest[1]) if len(rest) > 1 else None,
        )
    web.run_app(sim.app, host=args.host, port=args.port, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
