"""Browser pages for the sandbox: the customer's chat (on the Telegram simulator) and the
agent console (on the Udesk simulator).  Mount them on the simulators' apps before they
start; ``bridge.sandbox.run`` does."""

from .chat import add_chat_routes
from .console import add_console_routes

__all__ = ["add_chat_routes", "add_console_routes"]
