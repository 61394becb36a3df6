"""Privacy: what the bridge keeps about a person, handing it out (export) and erasing it.

- ``records``: how a person's rows are found in every table.
- ``export``: everything the bridge holds about one Telegram user, as JSON.
- ``erase``: a resumable erasure in the bridge and in Udesk, tracked in ``erasures``.
- ``forget``: the optional ``/forget`` Telegram command's outbound handler.

Retention of everyone's data over time is ``bridge.store.retention``.
"""
