"""``translate``: what a Telegram update means to the conversation, read alone."""

from __future__ import annotations

from typing import Any

from telegram import Update

from bridge.core.model import ButtonTap, ChatMembership, Command, CustomerMessage
from bridge.telegram.translate import Translation, translate

HOW = Translation(bot_username="udesk_test_bot")
USER = {"id": 42, "is_bot": False, "first_name": "Ann", "language_code": "en"}
PRIVATE = {"id": 42, "type": "private", "first_name": "Ann"}
GROUP = {"id": -100, "type": "group", "title": "Team"}


def _message(text: str, *, chat: dict[str, Any] = PRIVATE, command: int = 0) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": 7,
        "date": 1_700_000_000,
        "chat": chat,
        "from": USER,
        "text": text,
    }
    if command:
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": command}]
    return message


def _update(**fields: Any) -> Update:
    return Update.de_json({"update_id": 100, **fields}, None)


def test_a_known_command_with_its_arguments() -> None:
    incoming = translate(_update(message=_message("/start sales x", command=6)), HOW)
    assert incoming is not None and incoming.user.user_id == 42
    assert incoming.event == Command(7, "start", "sales x")


def test_a_command_for_this_bot_by_name_and_in_any_case() -> None:
    incoming = translate(_update(message=_message("/Agent@Udesk_Test_Bot", command=21)), HOW)
    assert incoming is not None and incoming.event == Command(7, "agent", "")


def test_a_command_for_another_bot_or_unknown_is_an_ordinary_message() -> None:
    for text, length in (("/agent@other_bot", 16), ("/weather", 8)):
        incoming = translate(_update(message=_message(text, command=length)), HOW)
        assert incoming is not None and isinstance(incoming.event, CustomerMessage)


def test_forget_is_a_command_only_when_turned_on() -> None:
    update = _update(message=_message("/forget", command=7))
    assert isinstance(translate(update, HOW).event, CustomerMessage)  # type: ignore[union-attr]
    on = Translation(bot_username="udesk_test_bot", forget_command=True)
    assert translate(update, on).event == Command(7, "forget", "")  # type: ignore[union-attr]


def test_messages_and_edits_in_private_chats_only() -> None:
    new = translate(_update(message=_message("hello")), HOW)
    assert isinstance(new.event, CustomerMessage) and not new.event.edited  # type: ignore[union-attr]
    edited = _message("hello!") | {"edit_date": 1_700_000_100}
    again = translate(_update(edited_message=edited), HOW)
    assert isinstance(again.event, CustomerMessage) and again.event.edited  # type: ignore[union-attr]
    assert translate(_update(message=_message("hello", chat=GROUP)), HOW) is None
    assert translate(_update(message=_message("/agent", chat=GROUP, command=6)), HOW) is None


def test_button_taps_and_the_bot_blocked() -> None:
    query = {
        "id": "q1",
        "from": USER,
        "chat_instance": "c",
        "data": "b:12",
        "message": _message("pick one"),
    }
    tap = translate(_update(callback_query=query), HOW)
    assert tap is not None and tap.event == ButtonTap("q1", 12, 7)
    member = {
        "chat": PRIVATE,
        "from": USER,
        "date": 1_700_000_000,
        "old_chat_member": {"user": USER | {"is_bot": True}, "status": "member"},
        "new_chat_member": {"user": USER | {"is_bot": True}, "status": "kicked", "until_date": 0},
    }
    blocked = translate(_update(my_chat_member=member), HOW)
    assert blocked is not None and blocked.event == ChatMembership(blocked=True)
