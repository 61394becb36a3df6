"""in-flight lock index: the claim's "is an earlier record of this customer still waiting?"
probe touches waiting records only, not the customer's whole history

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUES = ("telegram_updates", "outbound_messages", "inbound_messages")
IN_FLIGHT = sa.text("status IN ('todo', 'doing')")


def upgrade() -> None:
    for table in QUEUES:
        op.create_index(
            f"ix_{table}_lock_inflight",
            table,
            ["lock", "id"],
            unique=False,
            postgresql_where=IN_FLIGHT,
            sqlite_where=IN_FLIGHT,
        )


def downgrade() -> None:
    for table in QUEUES:
        op.drop_index(f"ix_{table}_lock_inflight", table_name=table)
