"""Stored things that call Meta with their own credentials: connections, ad accounts, catalogs.

Each keeps an access token and an optional app secret, encrypted with the service's
:class:`~metabridge.credentials.SecretBox`, and is found by its numeric id or by its unique name (CLI
users type names). One implementation of those rules for every kind of stored thing:

- :class:`Credentialed`: the decrypting accessors of a stored row (the ciphertexts stay private fields,
  and ``repr`` never shows them);
- :func:`encrypted_credentials` / :func:`credential_changes`: the column values to insert or update;
- :func:`find_by_id_or_name`: the lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, select

from metabridge.credentials import SecretBox

__all__ = ["Credentialed", "credential_changes", "encrypted_credentials", "find_by_id_or_name"]

T = TypeVar("T")


class Credentialed:
    """Mixin of a stored row with encrypted ``_access_token`` and ``_app_secret`` fields.

    Credentials are decrypted only when a caller asks with the box, so a stored object can be logged,
    cached or returned around the code without carrying a usable secret.
    """

    __slots__ = ()
    _access_token: str
    _app_secret: str | None

    def access_token(self, box: SecretBox) -> str:
        return box.decrypt(self._access_token)

    def app_secret(self, box: SecretBox) -> str | None:
        return box.decrypt(self._app_secret) if self._app_secret else None

    @property
    def has_app_secret(self) -> bool:
        return self._app_secret is not None


def encrypted_credentials(box: SecretBox, access_token: str, app_secret: str | None) -> dict[str, Any]:
    """``access_token`` and ``app_secret`` column values for a new row (an empty secret means none)."""
    return {"access_token": box.encrypt(access_token), "app_secret": box.encrypt(app_secret) if app_secret else None}


def credential_changes(
    box: SecretBox, *, access_token: str | None = None, app_secret: str | None = None, clear_app_secret: bool = False
) -> dict[str, Any]:
    """Column values for new credentials: ``None`` leaves one as it is; ``""`` or ``clear_app_secret``
    removes the app secret (calls are then made without ``appsecret_proof``)."""
    values: dict[str, Any] = {}
    if access_token is not None:
        values["access_token"] = box.encrypt(access_token)
    if app_secret:
        values["app_secret"] = box.encrypt(app_secret)
    elif app_secret is not None or clear_app_secret:
        values["app_secret"] = None
    return values


def find_by_id_or_name(conn: Connection, table: Table, id_or_name: str | int, from_row: Callable[[Any], T]) -> T | None:
    """The row with this numeric id, else the row with this name (names are unique per table)."""
    text = str(id_or_name)
    if text.isdigit():
        row = conn.execute(select(table).where(table.c.id == int(text))).first()
        if row is not None:
            return from_row(row)
    row = conn.execute(select(table).where(table.c.name == text)).first()
    return from_row(row) if row else None
