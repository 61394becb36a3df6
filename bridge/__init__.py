"""udesk-telegram-bridge: serve Telegram customers from a Udesk IM workbench."""

__version__ = "0.1.0"
