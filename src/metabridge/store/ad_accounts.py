"""Meta ad accounts that audiences sync to: encrypted credentials (like connections), throttling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from metabridge.credentials import SecretBox
from metabridge.store.credentialed import Credentialed, credential_changes, encrypted_credentials, find_by_id_or_name
from metabridge.store.schema import ad_accounts
from metabridge.timeutil import now_ms


@dataclass(frozen=True, slots=True)
class StoredAdAccount(Credentialed):
    id: int
    name: str
    account_id: str
    throttled_until: int | None
    created_at: int
    updated_at: int
    _access_token: str
    _app_secret: str | None

    @property
    def node(self) -> str:
        """The Graph node of the account: ``act_<id>``."""
        return f"act_{self.account_id}"

    def __repr__(self) -> str:  # never show credentials, even encrypted
        return f"StoredAdAccount(id={self.id}, name={self.name!r}, account_id={self.account_id!r})"


def _from_row(row: Any) -> StoredAdAccount:
    return StoredAdAccount(
        id=row.id, name=row.name, account_id=row.account_id, throttled_until=row.throttled_until,
        created_at=row.created_at, updated_at=row.updated_at, _access_token=row.access_token, _app_secret=row.app_secret,
    )


def create_ad_account(
    conn: Connection, box: SecretBox, *, name: str, account_id: str, access_token: str, app_secret: str | None = None
) -> StoredAdAccount:
    now = now_ms()
    new_id = conn.execute(
        insert(ad_accounts).values(
            name=name, account_id=account_id, **encrypted_credentials(box, access_token, app_secret),
            created_at=now, updated_at=now,
        ).returning(ad_accounts.c.id)
    ).scalar_one()
    found = get_ad_account(conn, new_id)
    assert found is not None
    return found


def get_ad_account(conn: Connection, ad_account_id: int) -> StoredAdAccount | None:
    row = conn.execute(select(ad_accounts).where(ad_accounts.c.id == ad_account_id)).first()
    return _from_row(row) if row else None


def find_ad_account(conn: Connection, id_or_name: str | int) -> StoredAdAccount | None:
    """By metabridge id or by name."""
    return find_by_id_or_name(conn, ad_accounts, id_or_name, _from_row)


def list_ad_accounts(conn: Connection) -> list[StoredAdAccount]:
    return [_from_row(row) for row in conn.execute(select(ad_accounts).order_by(ad_accounts.c.id))]


def update_credentials(
    conn: Connection, box: SecretBox, ad_account_id: int, *, name: str | None = None,
    access_token: str | None = None, app_secret: str | None = None,
) -> StoredAdAccount | None:
    values: dict[str, Any] = {"updated_at": now_ms()}
    if name is not None:
        values["name"] = name
    values.update(credential_changes(box, access_token=access_token, app_secret=app_secret))
    result = conn.execute(update(ad_accounts).where(ad_accounts.c.id == ad_account_id).values(**values))
    return get_ad_account(conn, ad_account_id) if result.rowcount else None


def throttle_ad_account(conn: Connection, ad_account_id: int, until_ms: int) -> None:
    conn.execute(update(ad_accounts).where(ad_accounts.c.id == ad_account_id).values(throttled_until=until_ms))
