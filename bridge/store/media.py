"""Customers' files on disk, each behind an unguessable, expiring token."""

from __future__ import annotations

import asyncio
import datetime as dt
import mimetypes
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bridge.store.tables import Media, utcnow

_UNSAFE = re.compile(r"[^\w.\- ]+", re.UNICODE)


def safe_filename(name: str | None, content_type: str) -> str:
    base = _UNSAFE.sub("_", (name or "").strip()).strip(". ")[:120]
    if not base:
        base = "file" + (mimetypes.guess_extension(content_type) or "")
    return base


@dataclass(frozen=True)
class StoredMedia:
    token: str
    url: str
    filename: str


class MediaStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        directory: Path,
        *,
        ttl_seconds: float,
        public_url: str,
    ) -> None:
        self.sessions = sessions
        self.directory = directory
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.public_url = public_url.rstrip("/")

    def url_for(self, token: str) -> str:
        return f"{self.public_url}/media/{token}"

    async def save(
        self, customer_id: int | None, data: bytes, filename: str | None, content_type: str
    ) -> StoredMedia:
        token = secrets.token_urlsafe(32)
        # Paths are made from the token alone, never from anything a user sent.
        path = self.directory / token[:2] / token
        await asyncio.to_thread(_write, path, data)
        name = safe_filename(filename, content_type)
        async with self.sessions.begin() as session:
            session.add(
                Media(
                    token=token,
                    customer_id=customer_id,
                    path=str(path),
                    filename=name,
                    content_type=content_type,
                    size=len(data),
                    expires_at=utcnow() + self.ttl,
                )
            )
        return StoredMedia(token=token, url=self.url_for(token), filename=name)

    async def lookup(self, token: str) -> Media | None:
        """The live media for a token; None when unknown or expired."""
        async with self.sessions() as session:
            media = await session.scalar(select(Media).where(Media.token == token))
        if media is None:
            return None
        expires = media.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=dt.UTC)
        return media if expires > utcnow() else None


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(path)
