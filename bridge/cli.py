"""``udesk-bridge``: the commands of the contract."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bridge import __version__
from bridge.settings import Settings, SettingsError, load_settings

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
    if problems:
        print(f"{len(problems)} problem(s) in the settings:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    assert settings is not None
    print("settings OK")
    print(f"  telegram mode: {settings.telegram_mode}")
    print(f"  udesk: {settings.udesk_api_url} as {settings.udesk_email}")
    print(f"  udesk rate limit: {settings.udesk_rate_limit}")
    print(f"  database: {'sqlite' if settings.is_sqlite else 'postgresql'}")
    return 0


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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
