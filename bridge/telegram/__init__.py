"""The Telegram boundary: update intake, translation, rendering and sending."""

import os

# PTB 22 warns on every duration field (RetryAfter.retry_after, …) unless told to return
# datetime.timedelta, which our code handles; the warning would otherwise fill the logs.
os.environ.setdefault("PTB_TIMEDELTA", "1")
