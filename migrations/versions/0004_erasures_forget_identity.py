"""erasures: completed erasures keep no token, Udesk ids, chat, first contact or file names

Rows completed before bridge.privacy.erase.forget_identity existed still hold what only
the pending steps needed; after this, a completed erasure is only the record that it ran.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # '[]' is read as JSON on PostgreSQL (json column) and stored as text on SQLite.
    op.execute(
        sa.text(
            "UPDATE erasures SET customer_token = '', udesk_customer_id = NULL, chat_id = NULL, "
            "first_seen_at = NULL, udesk_open = NULL, media_files = '[]' "
            "WHERE completed_at IS NOT NULL"
        )
    )


def downgrade() -> None:
    # Nothing to undo: what was cleared was erased on purpose and cannot come back.
    pass
