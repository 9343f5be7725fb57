"""catalog_items_sent.unsettled for the items of batches abandoned before 0004; open batches of 0003 in the
item format of 0004

0004 added ``unsettled``, which the sync sets when it abandons a batch (its items may or may not be in Meta
as the batch left them; the next sync resends them or, their product gone, deletes them). Batches abandoned
before 0004 left nothing: here their items become unsettled unless Meta confirmed them since, as if the
code of 0004 had abandoned them.

What the database holds tells it. ``catalog_batches`` keeps every batch (none is ever deleted but with its
catalog), its status (``abandoned``) and the items it carried; per item, batches are sent and settled in id
order (a job polls its open batches before sending, one job per catalog at a time, an item at most once per
job). An item of an abandoned batch ``a`` was confirmed since when

- its ``catalog_items_sent`` row holds a confirmed version that is not followed by a rejection
  (``fingerprint`` set, ``rejected_fingerprint`` null) and a batch after ``a`` that finished carried an
  UPDATE of it: Meta accepted that one, or rejected it and a later UPDATE was accepted (a rejection sets
  ``rejected_fingerprint``, only an accepted UPDATE clears it);
- or it has no row and a batch after ``a`` that finished carried a DELETE of it (a row is removed only
  by an accepted DELETE; a rejected one leaves it).

Anything else is marked (a spare mark costs one resend, or a DELETE Meta answers "no such item", which the
sync takes as done). A marked item without a row gets one that holds nothing confirmed, so the next sync
deletes it if its product is gone.

``unsettled`` lists the optional fields the abandoned UPDATEs may have given Meta (they are emptied if the
product dropped them). Batches of 0003 carried ``[retailer_id, fingerprint, kind]``, not the fields, and the
items they sent are not stored: ``[]``, which still resends the item (the fields of items confirmed before
0004 are not known either, ``catalog_items_sent.fields`` null). Batches in the format of 0004 give their
fields, joined with the item's current ``unsettled`` (running this again changes nothing).

Batches still open (``sent``) in the format of 0003 get ``[retailer_id, fingerprint, kind, fields]`` (fields
``[]`` for an UPDATE, as above; null for a DELETE): the sync of 0004 reads four values when it confirms or
abandons them, and a resumed job polls them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_DELETES = frozenset({"deleted", "retracted"})  # catalog.diff.ChangeKind values sent as DELETE
_CHUNK = 500

batches = sa.table(
    'catalog_batches',
    sa.column('id', sa.BigInteger), sa.column('catalog_id', sa.Integer), sa.column('status', sa.String),
    sa.column('items', sa.JSON), sa.column('sent_at', sa.BigInteger), sa.column('finished_at', sa.BigInteger),
)
sent = sa.table(
    'catalog_items_sent',
    sa.column('catalog_id', sa.Integer), sa.column('retailer_id', sa.String), sa.column('fingerprint', sa.String),
    sa.column('rejected_fingerprint', sa.String), sa.column('unsettled', sa.JSON(none_as_null=True)),
    sa.column('confirmed_at', sa.BigInteger),
)


def _records(items: Any) -> Iterator[tuple[str, str, list[str] | None]]:
    """``(retailer_id, kind, fields)`` of a batch's items, in either format (fields None: not stored)."""
    for item in items or ():
        if isinstance(item, (list, tuple)) and len(item) >= 3:
            fields = item[3] if len(item) >= 4 and isinstance(item[3], list) else None
            yield str(item[0]), str(item[2]), fields


def _merge(*held: list[str] | None) -> list[str] | None:
    known = [fields for fields in held if fields is not None]
    return sorted({name for fields in known for name in fields}) if known else None


def _backfill(conn: sa.Connection, catalog_id: int) -> None:
    # retailer_id -> [(abandoned batch id, fields it may have given Meta, when it was abandoned)]
    abandoned: dict[str, list[tuple[int, list[str], int]]] = {}
    rows = conn.execute(
        sa.select(batches.c.id, batches.c['items'], batches.c.sent_at, batches.c.finished_at)
        .where(batches.c.catalog_id == catalog_id, batches.c.status == 'abandoned').order_by(batches.c.id))
    for batch_id, items, sent_at, finished_at in rows:
        for rid, kind, fields in _records(items):
            given = [] if kind in _DELETES else (fields or [])
            abandoned.setdefault(rid, []).append((batch_id, given, finished_at or sent_at))
    if not abandoned:
        return
    first = min(marks[0][0] for marks in abandoned.values())
    last_update: dict[str, int] = {}
    last_delete: dict[str, int] = {}
    rows = conn.execute(  # streamed: a catalog synced for months has many finished batches after ``first``
        sa.select(batches.c.id, batches.c['items'])
        .where(batches.c.catalog_id == catalog_id, batches.c.status == 'finished', batches.c.id > first)
        .order_by(batches.c.id).execution_options(stream_results=True, yield_per=50))
    for batch_id, items in rows:
        for rid, kind, _ in _records(items):
            if rid in abandoned:
                (last_delete if kind in _DELETES else last_update)[rid] = batch_id

    ids = sorted(abandoned)
    state: dict[str, tuple[str | None, str | None, list[str] | None]] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            sa.select(sent.c.retailer_id, sent.c.fingerprint, sent.c.rejected_fingerprint, sent.c.unsettled)
            .where(sent.c.catalog_id == catalog_id, sent.c.retailer_id.in_(ids[start:start + _CHUNK])))
        state.update((rid, (fp, rejected, unsettled)) for rid, fp, rejected, unsettled in rows)

    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for rid in ids:
        row = state.get(rid)
        if row is None:
            settled_by = last_delete.get(rid, 0)
        elif row[0] is not None and row[1] is None:
            settled_by = last_update.get(rid, 0)
        else:
            settled_by = 0
        marks = [(given, at) for batch_id, given, at in abandoned[rid] if batch_id > settled_by]
        if not marks:
            continue
        if row is None:
            inserts.append({"catalog_id": catalog_id, "retailer_id": rid, "fingerprint": None,
                            "rejected_fingerprint": None, "unsettled": _merge(*(given for given, _ in marks)),
                            "confirmed_at": max(at for _, at in marks)})
            continue
        merged = _merge(row[2], *(given for given, _ in marks))
        if merged != row[2]:
            updates.append({"b_catalog_id": catalog_id, "b_retailer_id": rid, "unsettled": merged})
    if updates:
        conn.execute(sa.update(sent).where(sent.c.catalog_id == sa.bindparam('b_catalog_id'),
                                           sent.c.retailer_id == sa.bindparam('b_retailer_id')), updates)
    if inserts:
        conn.execute(sa.insert(sent), inserts)


def _open_batches_in_the_format_of_0004(conn: sa.Connection) -> None:
    rows = conn.execute(sa.select(batches.c.id, batches.c['items']).where(batches.c.status == 'sent')).all()
    for batch_id, items in rows:
        if not any(isinstance(item, list) and len(item) == 3 for item in items or ()):
            continue
        items = [[*item, None if item[2] in _DELETES else []] if isinstance(item, list) and len(item) == 3 else item
                 for item in items]
        conn.execute(sa.update(batches).where(batches.c.id == batch_id).values(items=items))


def upgrade() -> None:
    conn = op.get_bind()
    for catalog_id in conn.execute(
            sa.select(batches.c.catalog_id).where(batches.c.status == 'abandoned').distinct()).scalars().all():
        _backfill(conn, catalog_id)
    _open_batches_in_the_format_of_0004(conn)


def downgrade() -> None:
    pass  # data only: what 0004 reads either way
