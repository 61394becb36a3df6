"""``udesk-bridge customers export|erase``: the operator's side of access and erasure."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TextIO

import aiohttp
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.privacy.erase import Eraser, ErasureReport
from bridge.privacy.export import export_person
from bridge.settings import Settings
from bridge.store.db import create_engine, session_factory
from bridge.udesk.budget import RateBudget
from bridge.udesk.client import UdeskClient
from bridge.udesk.gateway import UdeskGateway

EXIT_INCOMPLETE = 1
EXIT_REFUSED = 2


class CommandError(Exception):
    """A problem to print as one line, with an exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@asynccontextmanager
async def _database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)
    try:
        yield session_factory(engine)
    except DBAPIError as exc:
        raise CommandError(
            f"database error ({type(exc.orig).__name__ if exc.orig else type(exc).__name__}); "
            "is it reachable and migrated (`udesk-bridge migrate`)?"
        ) from None
    finally:
        await engine.dispose()


@asynccontextmanager
async def _udesk(settings: Settings) -> AsyncIterator[UdeskGateway]:
    rate = settings.udesk_rate_limit
    async with aiohttp.ClientSession() as http:
        client = UdeskClient(
            settings.udesk_api_url,
            settings.udesk_email,
            settings.udesk_api_token.get_secret_value(),
            session=http,
            budget=RateBudget(None if rate.unlimited else rate.calls, rate.per_seconds),
            timeout=settings.udesk_timeout,
            max_attempts=3,
        )
        yield UdeskGateway(client)


async def export(settings: Settings, telegram_user_id: int, out: TextIO = sys.stdout) -> int:
    async with _database(settings) as sessions:
        data = await export_person(sessions, telegram_user_id)
    json.dump(data, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")
    if not data["held"]:
        print(f"note: {data['note']} (Telegram user id {telegram_user_id})", file=sys.stderr)
    elif data["customer"] is None:
        print(
            f"note: the bridge has no customer with Telegram user id {telegram_user_id}, "
            "only the records listed",
            file=sys.stderr,
        )
    return 0


async def erase(
    settings: Settings,
    telegram_user_id: int,
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    stdin: TextIO = sys.stdin,
    out: TextIO = sys.stdout,
) -> int:
    if not dry_run and not yes and not stdin.isatty():
        print(
            "refusing to erase without confirmation: stdin is not a terminal; pass --yes "
            "(or --dry-run to see what would go)",
            file=sys.stderr,
        )
        return EXIT_REFUSED
    async with _database(settings) as sessions, _udesk(settings) as udesk:
        eraser = Eraser(sessions, udesk, media_dir=settings.media_dir)
        if dry_run or not yes:
            plan = await eraser.plan(telegram_user_id)
            _print(plan, as_json, out)
            if dry_run:
                return 0
            out.write(f"Erase Telegram user {telegram_user_id} in the bridge and in Udesk? ")
            out.write("This cannot be undone. Type yes to confirm: ")
            out.flush()
            if stdin.readline().strip().lower() not in ("y", "yes"):
                print("nothing erased", file=sys.stderr)
                return EXIT_REFUSED
        report = await eraser.erase(telegram_user_id, requested_by="cli")
    _print(report, as_json, out)
    if not report.complete:
        print(
            f"erasure incomplete: {report.error}; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INCOMPLETE
    return 0


def _print(report: ErasureReport, as_json: bool, out: TextIO) -> None:
    if as_json:
        json.dump(report.to_json(), out, ensure_ascii=False, indent=2)
        out.write("\n")
        return
    for line in describe(report):
        out.write(line + "\n")


def describe(report: ErasureReport) -> list[str]:
    """The report as an operator reads it."""
    uid = report.telegram_user_id
    if report.dry_run:
        head = f"Dry run: erasing Telegram user {uid} would remove (nothing was changed):"
    elif report.complete:
        head = f"Erased Telegram user {uid} (erasure {report.erasure_id}):"
    else:
        head = f"Erasure {report.erasure_id} of Telegram user {uid} is incomplete:"
    lines = [head]
    if report.erasure_id is not None and report.dry_run:
        lines.append(f"  resumes erasure {report.erasure_id}, already done: {_steps(report)}")
    rows: dict[str, Any] = {k: v for k, v in report.rows.items() if v}
    lines.append(f"  rows: {sum(rows.values())}" + (":" if rows else ""))
    lines += [f"    {table}: {count}" for table, count in rows.items()]
    lines.append(f"  media files: {len(report.files)}" + (":" if report.files else ""))
    lines += [f"    {name}" for name in report.files]
    lines.append(f"  Udesk calls: {len(report.udesk_calls)}" + (":" if report.udesk_calls else ""))
    lines += [f"    {call}" for call in report.udesk_calls]
    if not report.dry_run:
        lines.append(f"  steps done: {_steps(report)}")
    if report.remaining:
        lines.append(f"  remaining: {', '.join(report.remaining)}")
    if report.error:
        lines.append(f"  stopped by: {report.error}")
    return lines


def _steps(report: ErasureReport) -> str:
    return ", ".join(f"{k} ({v})" for k, v in report.steps_done.items()) or "nothing"
