"""Two-way traffic for the fault matrix, and the one check every case ends with.

``Traffic`` plays a few customers (writing through the Telegram simulator) and their agent
(replying through the Udesk simulator) and remembers what each side said, in order.
``check()`` waits until everything arrived, waits a little more (anything sent twice shows
up by then), then asserts, per customer: Udesk holds exactly the customer's messages, once,
in order; the chat holds exactly the agent's replies, once, in order (replies the test
declared undeliverable never appear), and no bot sentence was sent twice.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bridge.sandbox.telegram_sim import TelegramSimulator
from bridge.sandbox.udesk_sim import UdeskSimulator
from tests import waiting

T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]], *, timeout: float = 20.0, what: str = ""
) -> T:
    """``tests.waiting.eventually`` with the fault matrix's longer default timeout."""
    return await waiting.eventually(probe, timeout=timeout, what=what)  # type: ignore[arg-type,no-any-return]


def once_in_order_problems(got: list[str], expected: list[str]) -> str | None:
    """None when ``got == expected``; otherwise what is missing, doubled, foreign or out of
    order, in words."""
    if got == expected:
        return None
    counts = Counter(got)
    wanted = set(expected)
    missing = [e for e in expected if counts[e] == 0]
    doubled = {t: n for t, n in counts.items() if n > 1}
    foreign = [g for g in got if g not in wanted]
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if doubled:
        problems.append(f"delivered more than once {doubled}")
    if foreign:
        problems.append(f"unexpected {foreign}")
    if not problems:
        problems.append("out of order")
    return "; ".join(problems) + f"\n  got:      {got}\n  expected: {expected}"


def assert_once_in_order(got: list[str], expected: list[str], where: str) -> None:
    problem = once_in_order_problems(got, expected)
    if problem is not None:
        raise AssertionError(f"{where}: {problem}")


def collapse_adjacent(got: list[str]) -> tuple[list[str], list[int]]:
    """``got`` with runs of equal neighbours collapsed, and the indexes (in ``got``) of the
    extra copies removed."""
    collapsed: list[str] = []
    extra: list[int] = []
    for index, text in enumerate(got):
        if collapsed and collapsed[-1] == text:
            extra.append(index)
        else:
            collapsed.append(text)
    return collapsed, extra


@dataclass
class Customer:
    uid: int
    name: str
    wrote: list[str] = field(default_factory=list)  # to Udesk, in order
    replies: list[str] = field(default_factory=list)  # to the chat, expected, in order
    undeliverable: list[str] = field(default_factory=list)  # replies that must never show
    reply_ids: dict[str, str] = field(default_factory=dict)  # reply text -> Udesk message_id

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.uid, "first_name": self.name, "language_code": "en"}

    @property
    def chat(self) -> int:
        return self.uid

    @property
    def token(self) -> str:
        return f"tg-{self.uid}"

    @property
    def reply_prefix(self) -> str:
        return f"a{self.uid} "


class Traffic:
    """Customers writing and an agent replying, with what each side said kept in order."""

    def __init__(
        self, udesk: UdeskSimulator, telegram: TelegramSimulator, count: int, base: int
    ) -> None:
        self.udesk = udesk
        self.telegram = telegram
        self.customers = [Customer(base + i, f"C{base + i}") for i in range(count)]
        self._written: Counter[int] = Counter()
        self._replied: Counter[int] = Counter()

    # --- the two sides --------------------------------------------------------------------

    def write(self, c: Customer, text: str | None = None) -> str:
        """The customer writes (Telegram simulator); expected once in Udesk, in order."""
        if text is None:
            text = f"c{c.uid} m{self._written[c.uid]}"
            self._written[c.uid] += 1
        self.telegram.inject_text(c.user, text)
        c.wrote.append(text)
        return text

    async def reply(self, c: Customer, text: str | None = None, *, deliverable: bool = True) -> str:
        """The agent replies (Udesk simulator pushes it); expected once in the chat, in
        order, unless ``deliverable`` is False (then it must never show)."""
        if text is None:
            text = f"{c.reply_prefix}r{self._replied[c.uid]}"
            self._replied[c.uid] += 1
        (c.replies if deliverable else c.undeliverable).append(text)
        c.reply_ids[text] = await self.udesk.agent_reply(c.token, text)
        return text

    async def connect(self, customers: Iterable[Customer] | None = None) -> None:
        """Each customer writes a first message; returns once Udesk gave each one an agent
        (the start_session push reached the bridge)."""
        chosen = list(customers if customers is not None else self.customers)
        for c in chosen:
            self.write(c)
        await self.wait_connected(chosen)

    async def wait_connected(
        self, customers: Iterable[Customer] | None = None, timeout: float = 20.0
    ) -> None:
        chosen = list(customers if customers is not None else self.customers)
        await eventually(
            lambda: all(self.udesk.session_of(c.token) is not None for c in chosen),
            timeout=timeout,
            what="an agent session for every customer",
        )

    async def burst(
        self,
        writes: int = 2,
        replies: int = 2,
        *,
        gap: float = 0.02,
        customers: Iterable[Customer] | None = None,
    ) -> None:
        """Every customer writes ``writes`` messages while their agent sends ``replies``,
        interleaved, all customers at once."""

        async def one(c: Customer) -> None:
            for n in range(max(writes, replies)):
                if n < writes:
                    self.write(c)
                if n < replies:
                    await self.reply(c)
                await asyncio.sleep(gap)

        await asyncio.gather(*(one(c) for c in (customers or self.customers)))

    # --- what arrived ---------------------------------------------------------------------

    def in_udesk(self, c: Customer) -> list[str]:
        """Text messages Udesk accepted from the customer, in order, duplicates excluded
        (Udesk shows a repeated message_id once)."""
        return [
            str(m.data.get("content", ""))
            for m in self.udesk.messages_for(c.token)
            if m.type == "message"
        ]

    def chat_texts(self, c: Customer) -> list[str]:
        return [m.text or m.caption or "" for m in self.telegram.sent(c.chat)]

    def in_chat(self, c: Customer) -> list[str]:
        """The agent replies the chat received (this test's replies only), in order."""
        return [t for t in self.chat_texts(c) if t.startswith(c.reply_prefix)]

    def arrived(self) -> bool:
        for c in self.customers:
            if len(self.in_udesk(c)) < len(c.wrote) or not set(c.wrote) <= set(self.in_udesk(c)):
                return False
            got = set(self.in_chat(c))
            if not set(c.replies) <= got:
                return False
        return True

    def summary(self) -> str:
        lines = []
        for c in self.customers:
            lines.append(
                f"{c.uid}: udesk {len(self.in_udesk(c))}/{len(c.wrote)} "
                f"chat {len(self.in_chat(c))}/{len(c.replies)}"
            )
        return "; ".join(lines)

    async def wait_arrived(self, timeout: float = 30.0) -> None:
        try:
            await eventually(self.arrived, timeout=timeout, what="every message delivered")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.summary()}\n{self.report()}") from None

    def report(self) -> str:
        out = []
        for c in self.customers:
            for side, got, expected in (
                ("udesk", self.in_udesk(c), c.wrote),
                ("chat", self.in_chat(c), c.replies),
            ):
                problem = once_in_order_problems(got, expected)
                if problem:
                    out.append(f"{side} {c.uid}: {problem}")
        return "\n".join(out) or "all exactly once in order"

    # --- the check ------------------------------------------------------------------------

    async def check(self, *, timeout: float = 30.0, quiet: float = 1.0) -> None:
        """Everything exactly once and in order, on both sides, for every customer."""
        await self.wait_arrived(timeout)
        await asyncio.sleep(quiet)  # anything sent twice shows up by now
        self.assert_exactly_once_in_order()

    def assert_exactly_once_in_order(self, *, strict_chat: bool = True) -> None:
        for c in self.customers:
            assert_once_in_order(self.in_udesk(c), c.wrote, f"Udesk, customer {c.uid}")
            if strict_chat:
                assert_once_in_order(self.in_chat(c), c.replies, f"Telegram, chat {c.chat}")
            shown = set(self.chat_texts(c))
            leaked = [t for t in c.undeliverable if t in shown]
            assert not leaked, f"chat {c.chat}: undeliverable replies were shown: {leaked}"
            if strict_chat:
                doubled = {t: n for t, n in Counter(self.chat_texts(c)).items() if n > 1}
                assert not doubled, f"chat {c.chat}: bot messages sent twice: {doubled}"


async def talk_until(
    traffic: Traffic,
    stop: asyncio.Event,
    rnd: random.Random,
    gap: tuple[float, float] = (0.02, 0.15),
) -> None:
    """Customers write and the agent replies, at random intervals within ``gap``, until
    ``stop``; a reply whose push died with a bridge process is left to the catch-up."""

    async def one(c: Customer) -> None:
        while not stop.is_set():
            if rnd.random() < 0.5:
                traffic.write(c)
            else:
                try:
                    await traffic.reply(c)
                except (OSError, asyncio.CancelledError):
                    # The push died with the bridge (the simulator's push worker may not
                    # survive a reset connection); the reply is in Udesk all the same and
                    # comes with the catch-up at the next start.
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
            await asyncio.sleep(rnd.uniform(*gap))

    await asyncio.gather(*(one(c) for c in traffic.customers))
