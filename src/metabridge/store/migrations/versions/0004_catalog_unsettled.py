"""catalog_items_sent.fields (optional fields Meta holds, for clearing) and .unsettled (items an
abandoned batch carried)

``fields`` was first written into 0003 after 0003 had been released; a database already at 0003 gets it here.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('catalog_items_sent', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fields', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('unsettled', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('catalog_items_sent', schema=None) as batch_op:
        batch_op.drop_column('unsettled')
        batch_op.drop_column('fields')
