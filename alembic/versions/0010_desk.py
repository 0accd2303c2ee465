"""The editor's desk: accounts, server-side sessions, the audit log, the desk's policy, and
indexes for searching subscribers by the start of their address or name.

Only new tables and indexes: nothing already stored changes, and the downgrade drops exactly
what this adds.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import digest.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = digest.models.UTCDateTime(timezone=True)
_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "desk_users",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", _STR(length=320), nullable=False),
        sa.Column("role", _STR(length=16), nullable=False),
        sa.Column("password_hash", _STR(length=200), nullable=False),
        sa.Column("totp_secret", _STR(length=64), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("password_changed_at", _TS, nullable=False),
        sa.Column("last_login_at", _TS, nullable=True),
    )
    op.create_index("ix_desk_users_email", "desk_users", ["email"], unique=True)
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_hash", _STR(length=64), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("desk_users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("csrf_token", _STR(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("ip", _STR(length=64), nullable=True),
        sa.Column("user_agent", _STR(length=512), nullable=True),
        sa.Column("pending_totp", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_desk_sessions_token_hash", "desk_sessions", ["token_hash"], unique=True)
    op.create_index("ix_desk_sessions_user_id", "desk_sessions", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", _TS, nullable=False),
        sa.Column("via", _STR(length=8), nullable=False),
        sa.Column("actor", _STR(length=320), nullable=False),
        sa.Column("source", _STR(length=255), nullable=True),
        sa.Column("action", _STR(length=64), nullable=False),
        sa.Column("target", _STR(length=400), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_table(
        "desk_policy",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("require_totp", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", _TS, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # LIKE 'prefix%' uses a btree only with the pattern operator class under a non-C
        # collation; the desk's search is a prefix search on the address and on the name.
        op.execute(
            "CREATE INDEX ix_subscribers_email_prefix ON subscribers (email text_pattern_ops)"
        )
        op.execute(
            "CREATE INDEX ix_subscribers_name_prefix ON subscribers (lower(name) text_pattern_ops)"
        )
    else:
        op.execute("CREATE INDEX ix_subscribers_email_prefix ON subscribers (email)")
        op.execute("CREATE INDEX ix_subscribers_name_prefix ON subscribers (lower(name))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_subscribers_name_prefix")
    op.execute("DROP INDEX IF EXISTS ix_subscribers_email_prefix")
    op.drop_table("desk_policy")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("ix_desk_sessions_user_id", table_name="desk_sessions")
    op.drop_index("ix_desk_sessions_token_hash", table_name="desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_index("ix_desk_users_email", table_name="desk_users")
    op.drop_table("desk_users")
