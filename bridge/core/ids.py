"""Each side's ids as their own types, so a Telegram id is never passed where a Udesk one is."""

from typing import NewType

TelegramUserId = NewType("TelegramUserId", int)
TelegramChatId = NewType("TelegramChatId", int)
TelegramMessageId = NewType("TelegramMessageId", int)
CustomerToken = NewType("CustomerToken", str)
UdeskCustomerId = NewType("UdeskCustomerId", int)
ImSubSessionId = NewType("ImSubSessionId", int)
UdeskMessageId = NewType("UdeskMessageId", str)
