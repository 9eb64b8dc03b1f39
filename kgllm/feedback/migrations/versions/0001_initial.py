"""The feedback store's first schema: answers and the feedback on them.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kgllm_answers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=False),
        sa.Column("retriever", sa.String(50), nullable=False),
        sa.Column("model", sa.String(1000), nullable=True),
        sa.Column("model_sha256", sa.String(64), nullable=True),
        sa.Column("index_sha256", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kgllm_answers"),
    )
    op.create_table(
        "kgllm_feedback",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("answer_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("correction", sa.JSON(), nullable=True),
        sa.Column("triple_id", sa.String(16), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(sa.column("kind").in_(("rating", "correction", "flag")), name=op.f("ck_kgllm_feedback_kind")),
        sa.CheckConstraint(sa.or_(sa.column("rating").is_(None), sa.column("rating").in_((-1, 1))),
                           name=op.f("ck_kgllm_feedback_rating")),
        sa.ForeignKeyConstraint(["answer_id"], ["kgllm_answers.id"],
                                name="fk_kgllm_feedback_answer_id_kgllm_answers"),
        sa.PrimaryKeyConstraint("id", name="pk_kgllm_feedback"),
    )
    op.create_index("ix_kgllm_feedback_answer_id", "kgllm_feedback", ["answer_id"])


def downgrade() -> None:
    op.drop_index("ix_kgllm_feedback_answer_id", table_name="kgllm_feedback")
    op.drop_table("kgllm_feedback")
    op.drop_table("kgllm_answers")
