"""``udesk-bridge``: the commands of the contract."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bridge import __version__
from bridge.settings import Settings, SettingsError, load_settings
from bridge.store.exclusive import EXIT_ALREADY_RUNNING, AlreadyRunning

EXIT_CONFIG = 1


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="YAML file with settings (lower-case keys); environment variables win over it",
    )


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from bridge.app import run_until_signalled
    from bridge.logs import setup_logging

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    return asyncio.run(run_until_signalled(settings, run_migrations=not args.no_migrate))


def cmd_migrate(args: argparse.Namespace) -> int:
    from bridge.store import migrate

    url = args.database_url or _settings(args).database_url.get_secret_value()
    migrate.upgrade(url, args.revision)
    print(f"database at revision {args.revision}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    problems: list[str] = []
    try:
        settings = _settings(args)
    except SettingsError as exc:
        problems.extend(exc.problems)
        settings = None
    from bridge.admin.explain import check_routing, routing_file_from

    routing_file = settings.routing_file if settings else routing_file_from(None, args.config)
    routing_problems, routing_summary = check_routing(routing_file)
    if routing_problems:
        print(f"{len(routing_problems)} problem(s) in the routing file:", file=sys.stderr)
        for line in routing_problems:
            print(f"  {line}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the settings:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
    if problems or routing_problems:
        return EXIT_CONFIG
    assert settings is not None
    print("settings OK")
    print(f"  telegram mode: {settings.telegram_mode}")
    print(f"  udesk: {settings.udesk_api_url} as {settings.udesk_email}")
    print(f"  udesk rate limit: {settings.udesk_rate_limit}")
    print(f"  database: {'sqlite' if settings.is_sqlite else 'postgresql'}")
    for line in routing_summary:
        print(line)
    return 0


def cmd_routing_explain(args: argparse.Namespace) -> int:
    from bridge.admin.explain import explain, load_router, parse_at, routing_file_from
    from bridge.core.routing import CustomerContext, RoutingFileError

    try:
        router = load_router(routing_file_from(args.routing_file, args.config))
    except RoutingFileError as exc:
        print(f"{len(exc.problems)} problem(s) in the routing file:", file=sys.stderr)
        for line in exc.problems:
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        at = parse_at(args.at, router)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    tags = tuple(t.strip() for t in (args.tags or "").split(",") if t.strip())
    context = CustomerContext(
        language=args.language,
        start_param=args.start_param,
        level=args.level,
        tags=tags,
        chat_type=args.chat_type,
    )
    print(explain(router, context, at, want_agent=args.agent))
    return 0


def _add_routing(commands: Any) -> None:
    routing = commands.add_parser(
        "routing",
        help="inspect the routing file",
        description="Inspect the routing file (ROUTING_FILE).",
    )
    actions = routing.add_subparsers(dest="routing_command", required=True, metavar="ACTION")
    exp = actions.add_parser(
        "explain",
        help="which rule matches a customer, and the session request it leads to",
        description="Print which routing rule matches the customer described by the options "
        "(or the default), whether the moment is within business hours, and the exact "
        "POST /im/sessions body (customer_token is a placeholder). Needs only the routing "
        "file: --routing-file, else ROUTING_FILE, else routing_file in --config. Exit 1 with "
        "every problem if the file is broken.",
    )
    _add_config(exp)
    exp.add_argument("--routing-file", type=Path, metavar="FILE", help="overrides ROUTING_FILE")
    exp.add_argument("--language", help="Telegram language_code, e.g. ru or zh-hans")
    exp.add_argument("--start-param", help="deep-link payload of /start")
    exp.add_argument("--level", help="customer level from Udesk, e.g. vip")
    exp.add_argument("--tags", help="customer tags, comma-separated")
    exp.add_argument(
        "--chat-type",
        default="private",
        choices=["private", "group", "supergroup", "channel"],
        help="default private",
    )
    exp.add_argument(
        "--at",
        metavar="TIME",
        help="ISO time, e.g. 2026-11-25T20:00+08:00 (no offset: the business hours' time "
        "zone); default now",
    )
    exp.add_argument(
        "--agent", action="store_true", help="the customer asked for a person (/agent)"
    )
    exp.set_defaults(func=cmd_routing_explain)


# sandbox (bridge/sandbox/run.py)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bridge.sandbox.run import SandboxOptions, serve

    options = SandboxOptions(
        host=args.host,
        udesk_port=args.udesk_port,
        telegram_port=args.telegram_port,
        bridge_port=args.bridge_port,
        data_dir=args.data_dir,
    )
    return asyncio.run(serve(options))


def _add_sandbox(commands: Any) -> None:
    sandbox = commands.add_parser(
        "sandbox",
        help="the bridge between local Udesk and Telegram simulators, with browser pages",
        description="Start a Udesk simulator, a Telegram Bot API simulator and the real bridge "
        "between them in one process, and print the URLs of a customer chat page and an agent "
        "console. Uses SQLite in --data-dir unless DATABASE_URL is set; honours ROUTING_FILE, "
        "LOG_LEVEL and LOG_FORMAT; every other setting is chosen by the sandbox (fresh fake "
        "secrets each run). Ctrl-C stops it.",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    sandbox.add_argument("--udesk-port", type=int, default=8801, help="Udesk simulator and console")
    sandbox.add_argument(
        "--telegram-port", type=int, default=8802, help="Telegram simulator and chat page"
    )
    sandbox.add_argument("--bridge-port", type=int, default=8800, help="the bridge's HTTP server")
    sandbox.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./sandbox-data"),
        help="SQLite database and media (default ./sandbox-data)",
    )
    sandbox.set_defaults(func=cmd_sandbox)


def cmd_deeplink(args: argparse.Namespace) -> int:
    import os

    from bridge.core.deeplinks import LinkError, make
    from bridge.settings import load_yaml, parse_duration

    secret = os.environ.get("DEEPLINK_SECRET") or ""
    if not secret and args.config:
        secret = str(load_yaml(args.config).get("deeplink_secret") or "")
    if not secret:
        print("DEEPLINK_SECRET is not set (environment or --config)", file=sys.stderr)
        return EXIT_CONFIG
    try:
        ttl = parse_duration(args.ttl)
        payload = make(args.customer_token, ttl, secret)
    except (ValueError, LinkError) as exc:
        print(f"cannot sign this link: {exc}", file=sys.stderr)
        return 2
    print(f"https://t.me/{args.bot.lstrip('@')}?start={payload}" if args.bot else payload)
    return 0


def _add_deeplink(commands: Any) -> None:
    link = commands.add_parser(
        "deeplink",
        help="sign a /start link that ties a Telegram user to an existing Udesk customer",
        description="Print the start payload (or, with --bot, the whole t.me link) that links "
        "the Telegram user who opens it to the Udesk customer whose open_api_token is "
        "--customer-token. Signed with DEEPLINK_SECRET (environment, or deeplink_secret in "
        "--config); the bridge must run with the same secret. See docs/identity.md (deep links).",
    )
    _add_config(link)
    link.add_argument("--customer-token", required=True, help="the existing customer's token")
    link.add_argument("--ttl", default="7d", help="how long the link is valid (default 7d)")
    link.add_argument("--bot", metavar="USERNAME", help="print https://t.me/USERNAME?start=…")
    link.set_defaults(func=cmd_deeplink)


def _customer_command(args: argparse.Namespace) -> int:
    from bridge.logs import setup_logging
    from bridge.privacy import commands

    settings = _settings(args)
    setup_logging(settings.log_level, settings.log_format or "console", settings.secrets())
    try:
        if args.customers_command == "export":
            return asyncio.run(commands.export(settings, args.telegram_user))
        return asyncio.run(
            commands.erase(
                settings,
                args.telegram_user,
                dry_run=args.dry_run,
                yes=args.yes,
                as_json=args.json,
            )
        )
    except commands.CommandError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code


def _add_customers(commands: Any) -> None:
    customers = commands.add_parser(
        "customers",
        help="export or erase what the bridge holds about one person",
        description="The right of access and the right to erasure, for one Telegram user. "
        "Uses the daemon's settings (DATABASE_URL, UDESK_*, MEDIA_DIR). See docs/privacy.md.",
    )
    actions = customers.add_subparsers(dest="customers_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="print, as JSON, everything the bridge holds about the person",
        description="Print as JSON the customer row, IM sessions with surveys, the messages of "
        "both directions with their payloads, Telegram updates, media metadata, tickets, "
        'button actions and erasure requests of the Telegram user. "held" is false (and '
        '"note" says so) when the bridge holds nothing about them: never seen, or erased.',
    )
    erase = actions.add_parser(
        "erase",
        help="erase the person in the bridge and in Udesk (resumable)",
        description="Delete the person's rows in every table and their media files, close an "
        "open Udesk session, delete their Udesk IM sessions (destroy_session) and the Udesk "
        "customer (destroy_customer). Each step is recorded; if one fails (Udesk down), run "
        "the same command again to complete the rest. Exit 0 when complete, 1 when "
        "incomplete, 2 when not confirmed.",
    )
    for sub in (export, erase):
        _add_config(sub)
        sub.add_argument(
            "--telegram-user", type=int, required=True, metavar="ID", help="the Telegram user id"
        )
        sub.set_defaults(func=_customer_command)
    erase.add_argument(
        "--dry-run", action="store_true", help="list what would go; change nothing, call nobody"
    )
    erase.add_argument(
        "--yes", action="store_true", help="do not ask (required when stdin is not a terminal)"
    )
    erase.add_argument("--json", action="store_true", help="print the report as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="udesk-bridge",
        description="Serve Telegram customers from a Udesk IM workbench.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the daemon",
        description="Run the bridge: Telegram in, Udesk out, Udesk pushes in, Telegram out. "
        "Applies pending migrations on start unless --no-migrate.",
    )
    _add_config(run)
    run.add_argument("--no-migrate", action="store_true", help="do not migrate on start")
    run.set_defaults(func=cmd_run)

    mig = commands.add_parser(
        "migrate",
        help="apply database migrations",
        description="alembic upgrade against DATABASE_URL (or --database-url).",
    )
    _add_config(mig)
    mig.add_argument("--database-url", help="overrides DATABASE_URL for this command")
    mig.add_argument("--revision", default="head", help="target revision (default head)")
    mig.set_defaults(func=cmd_migrate)

    check = commands.add_parser(
        "check-config",
        help="validate settings and the routing file",
        description="Print every missing or invalid setting at once; exit 1 on any problem.",
    )
    _add_config(check)
    check.set_defaults(func=cmd_check_config)
    _add_routing(commands)
    _add_sandbox(commands)
    _add_deeplink(commands)
    _add_customers(commands)  # privacy
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SettingsError as exc:
        for line in exc.problems:
            print(f"configuration: {line}", file=sys.stderr)
        return EXIT_CONFIG
    except AlreadyRunning as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
