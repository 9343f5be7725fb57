"""The pure audience core: keys -> schema columns, member identity, rows, request bodies."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from metabridge.audiences import (
    MAX_ROWS,
    KeysError,
    Member,
    MemberError,
    RowBuilder,
    columns_for,
    member_key,
    normalize_keys,
    read_member,
    replace_body,
    row_fingerprint,
    users_body,
)


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("keys", "columns"),
    [
        (["email"], ("EMAIL",)),
        (["phone"], ("PHONE",)),
        (["external_id"], ("EXTERN_ID",)),
        (["madid"], ("MADID",)),
        (["first_name"], ("FN", "FI")),
        (["birthdate"], ("DOBY", "DOBM", "DOBD")),
        (["country", "zip", "email", "last_name", "first_name"], ("EMAIL", "LN", "FN", "FI", "ZIP", "COUNTRY")),
        (["phone", "external_id", "gender", "city", "state"], ("EXTERN_ID", "PHONE", "GEN", "CT", "ST")),
        (["Email", "email"], ("EMAIL",)),
    ],
)
def test_keys_map_to_schema_columns_in_meta_order(keys: list[str], columns: tuple[str, ...]) -> None:
    assert columns_for(keys) == columns


@pytest.mark.parametrize("keys", [[], ["fax"], ["email", "ssn"]])
def test_unknown_or_no_keys_are_refused(keys: list[str]) -> None:
    with pytest.raises(KeysError):
        normalize_keys(keys)


@pytest.mark.parametrize(
    ("member", "key"),
    [
        ({"external_id": " CUST 42 ", "email": "a@b.co"}, "external_id:CUST 42"),
        ({"email": " Ana@Example.COM ", "phone": "+1 650 555 1212"}, "email:" + h("ana@example.com")),
        ({"phone": "+1 (650) 555-1212"}, "phone:" + h("16505551212")),
        ({"external_id": "x" * 300}, "external_id#sha256:" + h("x" * 300)),
    ],
)
def test_member_identity_is_external_id_else_email_else_phone(member: dict, key: str) -> None:
    read = read_member(0, member)
    assert isinstance(read, Member)
    assert read.key == key
    assert read.data == {k: v for k, v in member.items()}


@pytest.mark.parametrize(
    ("member", "field", "fragment"),
    [
        ({"email": "not-an-email"}, "email", "email"),
        ({"city": "Paris"}, "external_id", "needs a usable external_id, email or phone"),
        ({"email": "a@b.co", "shoe_size": 42}, "shoe_size", "not an audience member field"),
        ({"email": "a@b.co", "country": "Atlantis"}, "country", ""),
        ("ana@example.com", "member", "JSON object"),
    ],
)
def test_invalid_members_are_reported_with_field_and_rule(member: object, field: str, fragment: str) -> None:
    read = read_member(7, member)
    assert isinstance(read, MemberError)
    assert read.as_dict()["index"] == 7
    assert any(e["field"] == field and fragment in e["message"] for e in read.errors), read.errors


def test_empty_values_mean_not_given() -> None:
    read = read_member(0, {"email": "a@b.co", "phone": "", "city": None})
    assert isinstance(read, Member)
    assert read.data == {"email": "a@b.co"}


FULL = {"EXTERN_ID": "c1", "EMAIL": h("a@b.co"), "PHONE": h("16505551212"), "FN": h("ana"), "FI": h("a"),
        "LN": h("lima"), "ZIP": h("94103")}


@pytest.mark.parametrize(
    ("values", "keys", "schema", "cells"),
    [
        (FULL, ["email"], ("EMAIL",), (FULL["EMAIL"],)),
        (FULL, ["phone", "email"], ("EMAIL", "PHONE"), (FULL["EMAIL"], FULL["PHONE"])),
        ({"EMAIL": FULL["EMAIL"]}, ["email", "phone"], ("EMAIL", "PHONE"), (FULL["EMAIL"], "")),
        (FULL, ["external_id", "email"], ("EXTERN_ID", "EMAIL"), ("c1", FULL["EMAIL"])),
        # no EXTERN_ID: the row goes under the schema without it (Meta rejects "empty external ID")
        ({"EMAIL": FULL["EMAIL"]}, ["external_id", "email"], ("EMAIL",), (FULL["EMAIL"],)),
        ({"FN": h("ana"), "FI": h("a"), "LN": h("lima"), "ZIP": h("94103")}, ["first_name", "last_name", "zip"],
         ("LN", "FN", "FI", "ZIP"), (h("lima"), h("ana"), h("a"), h("94103"))),
    ],
)
def test_rows_follow_the_schema_and_group_by_extern_id(values, keys, schema, cells) -> None:
    schema_key = ",".join(schema)
    assert RowBuilder(columns_for(keys), keys)(values) == (schema_key, cells, row_fingerprint(schema_key, cells))


@pytest.mark.parametrize(
    ("values", "keys", "fragment"),
    [
        ({"PHONE": h("1")}, ["email"], "no value for this destination's keys (email)"),
        ({"ZIP": h("94103"), "EMAIL": h("x")}, ["zip", "country"], "only broad keys (ZIP)"),
        ({"FN": h("ana"), "FI": h("a")}, ["first_name", "last_name"], "only broad keys"),
    ],
)
def test_members_without_usable_values_are_rejected_with_a_reason(values, keys, fragment) -> None:
    reason = RowBuilder(columns_for(keys), keys)(values)
    assert isinstance(reason, str) and fragment in reason


def test_fingerprint_changes_with_any_cell_or_schema() -> None:
    a = row_fingerprint("EMAIL", ("x",))
    assert a == row_fingerprint("EMAIL", ("x",))
    assert a != row_fingerprint("EMAIL", ("y",))
    assert a != row_fingerprint("PHONE", ("x",))
    assert a != row_fingerprint("EMAIL,PHONE", ("x", ""))
    # the formula stored fingerprints were made with: changing it would make every sync resend everything
    assert a == h("EMAIL\x1ex")


def test_request_bodies() -> None:
    assert orjson.loads(orjson.dumps(users_body(["EMAIL", "PHONE"], [("a", ""), ("b", "c")]))) == {
        "payload": {"schema": ["EMAIL", "PHONE"], "is_raw": True, "data": [["a", ""], ["b", "c"]]}}
    body = replace_body(["EMAIL"], [("a",)], session_id=9, batch_seq=1, last_batch=True)
    assert body["session"] == {"session_id": 9, "batch_seq": 1, "last_batch_flag": True}
    assert orjson.loads(orjson.dumps(body["payload"]))["data"] == [["a"]]
    with pytest.raises(ValueError):
        users_body(["EMAIL"], [("a",)] * (MAX_ROWS + 1))
    with pytest.raises(ValueError):
        users_body(["EMAIL", "PHONE"], [("a",)])
    with pytest.raises(ValueError):
        replace_body(["EMAIL"], [("a",)], session_id=1, batch_seq=0, last_batch=False)
    with pytest.raises(ValueError):
        users_body(["EMAIL"], [])


def test_member_key_needs_an_identifier() -> None:
    assert member_key({"FN": "x", "MADID": "m"}) is None
