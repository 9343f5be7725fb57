"""The sandbox's ``/{audience_id}/users`` and ``/usersreplace`` over real HTTP: row validation, encodings,
membership exactness, sessions and every 2650 subcode (audiences-and-catalog.md §2)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from _audience_graph import Graph, as_set, graph_error, sha

from metabridge.sandbox.control import SandboxControl

A, B, C, D, E, F = (sha(f"{name}@example.com") for name in "abcdef")
P1, P2 = sha("15551230001"), sha("15551230002")
FN, LN, ZIP = sha("mary"), sha("smith"), sha("94025")
EMPTY = sha("")
MADID = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
MULTI = ["EXTERN_ID", "EMAIL", "PHONE"]
DPO = "DATA_PROCESSING_OPTIONS"
LDU_SCHEMA = ["EMAIL", DPO, f"{DPO}_COUNTRY", f"{DPO}_STATE"]


def _members(sandbox: SandboxControl, audience_id: str) -> set[frozenset[tuple[str, str]]]:
    return as_set(sandbox.all_members(audience_id))


# --- per-row validation -------------------------------------------------------------------------------

# (id, schema, a valid row for the schema, the row under test, reason fragment or None when valid)
ROW_CASES: list[tuple[str, Any, Any, Any, str | None]] = [
    ("multi: hashed cells", ["EMAIL", "FN"], [B, FN], [A, LN], None),
    ("multi: unknown cell empty", ["EMAIL", "FN"], [B, FN], [A, ""], None),
    ("multi: plaintext email", ["EMAIL", "FN"], [B, FN], ["mary@example.com", FN], "EMAIL is not hashed"),
    ("multi: uppercase hex", ["EMAIL", "FN"], [B, FN], [A.upper(), FN], "EMAIL is uppercase hex"),
    ("multi: md5", ["EMAIL", "FN"], [B, FN], ["1a79a4d60de6718e8e5b326e338ae533", ""], "EMAIL is not hashed"),
    ("multi: sha256 of empty", ["EMAIL", "FN"], [B, FN], [A, EMPTY], "FN is the SHA-256 of an empty string"),
    ("multi: not a string", ["EMAIL", "ZIP"], [B, ZIP], [A, 94025], "ZIP must be a string"),
    ("multi: row too short", ["EMAIL", "FN"], [B, FN], [A], "row must be an array of 2 cells"),
    ("multi: row too long", ["EMAIL", "FN"], [B, FN], [A, FN, LN], "row must be an array of 2 cells"),
    ("multi: row not an array", ["EMAIL", "FN"], [B, FN], A, "row must be an array of 2 cells"),
    ("multi: every cell empty", ["EMAIL", "FN"], [B, FN], ["", ""], "every identity cell is empty"),
    ("extern: empty external ID", MULTI, ["u1", B, ""], ["", A, P1], "empty external ID"),
    ("extern: only the id", MULTI, ["u1", B, ""], ["u2", "", ""], None),
    ("extern: not a string", MULTI, ["u1", B, ""], [12, A, ""], "EXTERN_ID must be a string"),
    ("madid: lowercase", ["MADID", "FN"], [MADID, FN], [MADID.replace("6d", "7d"), ""], None),
    ("madid: uppercase", ["MADID", "FN"], [MADID, FN], [MADID.upper(), ""], "MADID must be lowercase"),
    ("madid: hashed", ["MADID", "FN"], [MADID, FN], [sha(MADID), ""], "MADID must not be hashed"),
    ("weak keys only", ["FN", "LN", "ZIP"], [FN, LN, ZIP], [FN, LN, ""], None),
    ("ldu: explicit location", LDU_SCHEMA, [B, [], "", ""], [A, ["LDU"], 1, 1000], None),
    ("ldu: only dpo", ["EMAIL", DPO], [B, []], ["", ["LDU"]], "every identity cell is empty"),
    ("ldu: bad option", ["EMAIL", DPO], [B, []], [A, ["XYZ"]], "DATA_PROCESSING_OPTIONS must"),
    ("ldu: bad state", LDU_SCHEMA, [B, [], "", ""], [A, ["LDU"], 1, 999], f"{DPO}_STATE must"),
    ("single: flat hash", "EMAIL_SHA256", B, A, None),
    ("single: one-element list", "EMAIL_SHA256", B, [A], None),
    ("single: two-element list", "EMAIL_SHA256", B, [A, C], "row must be a string or an array of one"),
    ("single: plaintext", "EMAIL_SHA256", B, "mary@example.com", "EMAIL is not hashed"),
    ("single: empty", "PHONE_SHA256", P1, "", "every identity cell is empty"),
    ("single: sha256 of empty", "PHONE_SHA256", P1, EMPTY, "PHONE is the SHA-256 of an empty string"),
    ("single: madid uppercase", "MOBILE_ADVERTISER_ID", MADID, MADID.upper(), "MADID must be lowercase"),
    ("single: extern id", "EXTERN_ID", "u1", "u2", None),
    ("single: empty extern id", "EXTERN_ID", "u1", "", "empty external ID"),
]


@pytest.mark.parametrize(
    ("case", "schema", "good", "row", "reason"), ROW_CASES, ids=[c[0] for c in ROW_CASES]
)
def test_row_validation(
    graph: Graph, sandbox: SandboxControl, case: str, schema: Any, good: Any, row: Any, reason: str | None
) -> None:
    audience_id = graph.create()
    answer = graph.add(audience_id, schema, [good, row])
    assert answer["audience_id"] == audience_id
    assert answer["num_received"] == 2
    if reason is None:
        assert (answer["num_invalid_entries"], answer["invalid_entry_samples"]) == (0, {})
        assert sandbox.member_count(audience_id) == 2
    else:
        assert answer["num_invalid_entries"] == 1
        ((key, got),) = answer["invalid_entry_samples"].items()
        assert key == orjson.dumps(row).decode()  # compact JSON of the row as sent
        assert reason in got
        assert sandbox.member_count(audience_id) == 1


def test_recorded_meta_shape_for_empty_external_id(graph: Graph) -> None:
    audience_id = graph.create()
    row = ["", A, "", "", ""]
    answer = graph.add(audience_id, ["EXTERN_ID", "EMAIL", "PHONE", "FN", "LN"], [row])
    assert answer["invalid_entry_samples"] == {orjson.dumps(row).decode(): "empty external ID"}


def test_invalid_samples_are_capped_at_100(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    rows = [[f"plain{i}@example.com"] for i in range(150)] + [[A]]
    answer = graph.add(audience_id, ["EMAIL"], rows)
    assert answer["num_invalid_entries"] == 150
    assert len(answer["invalid_entry_samples"]) == 100
    assert sandbox.member_count(audience_id) == 1


def test_stored_members_are_the_non_empty_cells(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EXTERN_ID", "EMAIL", "PHONE", "FN"], [["u1", A, "", FN], ["u2", "", P2, ""]])
    assert _members(sandbox, audience_id) == as_set(
        [{"EXTERN_ID": "u1", "EMAIL": A, "FN": FN}, {"EXTERN_ID": "u2", "PHONE": P2}]
    )
    other = graph.create("single")
    graph.add(other, "EMAIL_SHA256", [A, [B]])
    assert _members(sandbox, other) == as_set([{"EMAIL": A}, {"EMAIL": B}])


# --- request-level errors -----------------------------------------------------------------------------

REQUEST_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    ("no payload", {}, "payload"),
    ("payload not JSON", {"payload": "{not json"}, "payload"),
    ("payload not an object", {"payload": "[1, 2]"}, "payload"),
    ("unknown single schema", {"payload": {"schema": "EMAIL", "data": [A]}}, "payload.schema"),
    ("unknown multi key", {"payload": {"schema": ["EMAIL", "NAME"], "data": [[A, B]]}}, "payload.schema"),
    ("duplicate key", {"payload": {"schema": ["EMAIL", "EMAIL"], "data": [[A, B]]}}, "payload.schema"),
    ("no identity key", {"payload": {"schema": [DPO], "data": [[[]]]}}, "payload.schema"),
    ("empty schema", {"payload": {"schema": [], "data": [[A]]}}, "payload.schema"),
    ("no data", {"payload": {"schema": ["EMAIL"]}}, "payload.data"),
    ("empty data", {"payload": {"schema": ["EMAIL"], "data": []}}, "payload.data"),
    ("data not an array", {"payload": {"schema": ["EMAIL"], "data": A}}, "payload.data"),
    ("bad is_raw", {"payload": {"schema": ["EMAIL"], "data": [[A]], "is_raw": "yes"}}, "payload.is_raw"),
    (
        "session without id",
        {"payload": {"schema": ["EMAIL"], "data": [[A]]}, "session": {"batch_seq": 1}},
        "session.session_id",
    ),
    (
        "negative session id",
        {"payload": {"schema": ["EMAIL"], "data": [[A]]}, "session": {"session_id": -4}},
        "session.session_id",
    ),
]


@pytest.mark.parametrize(("case", "body", "field"), REQUEST_ERRORS, ids=[c[0] for c in REQUEST_ERRORS])
def test_request_level_errors(
    graph: Graph, sandbox: SandboxControl, case: str, body: dict[str, Any], field: str
) -> None:
    audience_id = graph.create()
    answer = graph.call("POST", f"{audience_id}/users", json=body)
    assert answer.status_code == 400
    assert graph_error(answer, 100)["error_data"] == {"field": field}
    assert sandbox.member_count(audience_id) == 0


def test_10000_rows_accepted_10001_rejected(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    rows = [[sha(f"user{i}@example.com")] for i in range(10_001)]
    error = graph_error(graph.users(audience_id, ["EMAIL"], rows), 100)
    assert error["error_data"] == {"field": "payload.data"} and "10000" in error["error_user_msg"]
    assert sandbox.member_count(audience_id) == 0
    answer = graph.add(audience_id, ["EMAIL"], rows[:10_000])
    assert (answer["num_received"], answer["num_invalid_entries"]) == (10_000, 0)
    assert sandbox.member_count(audience_id) == 10_000
    audience = graph.read(
        audience_id, "approximate_count_lower_bound,approximate_count_upper_bound,delivery_status"
    )
    bounds = (audience["approximate_count_lower_bound"], audience["approximate_count_upper_bound"])
    assert bounds == (10_000, 11_000)
    assert audience["delivery_status"]["code"] == 200
    replace = graph.replace(audience_id, ["EMAIL"], rows, {"session_id": 1, "batch_seq": 1})
    graph_error(replace, 100)
    remove = graph.users(audience_id, ["EMAIL"], rows, method="DELETE")
    graph_error(remove, 100)


# --- encodings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "form", "query"])
def test_add_in_every_encoding(graph: Graph, sandbox: SandboxControl, encoding: str) -> None:
    audience_id = graph.create()
    answer = graph.add(audience_id, ["EMAIL", "FN"], [[A, FN], [B, ""]], encoding=encoding)
    assert answer["num_received"] == 2
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": A, "FN": FN}, {"EMAIL": B}])


def test_json_body_with_payload_as_a_json_string(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    payload = orjson.dumps({"schema": "EMAIL_SHA256", "data": [A]}).decode()
    answer = graph.call("POST", f"{audience_id}/users", json={"payload": payload})
    assert answer.status_code == 200, answer.text
    assert sandbox.member_count(audience_id) == 1


def test_multipart_form_like_docs_curl(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    payload = orjson.dumps({"schema": ["EMAIL"], "data": [[A], [B]]}).decode()
    answer = graph.call("POST", f"{audience_id}/users", files={"payload": (None, payload)})
    assert answer.status_code == 200, answer.text
    assert sandbox.member_count(audience_id) == 2


@pytest.mark.parametrize(
    "how",
    ["DELETE json", "DELETE form", "DELETE query", "POST method=DELETE form", "POST method=DELETE json"],
)
def test_removal_transports(graph: Graph, sandbox: SandboxControl, how: str) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A], [B], [C]])
    if how.startswith("DELETE"):
        encoding = how.removeprefix("DELETE ")
        answer = graph.users(audience_id, ["EMAIL"], [[B]], method="DELETE", encoding=encoding)
    else:
        encoding = "form" if how.endswith("form") else "json"
        params = {"method": "DELETE"}
        if encoding == "json":
            body = {"payload": {"schema": ["EMAIL"], "data": [[B]]}, "method": "DELETE"}
            answer = graph.call("POST", f"{audience_id}/users", json=body)
        else:
            answer = graph.users(audience_id, ["EMAIL"], [[B]], encoding="form", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["num_received"] == 1
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": A}, {"EMAIL": C}])


# --- membership exactness -----------------------------------------------------------------------------


def test_add_remove_membership_is_exact(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    ours: dict[str, dict[str, str]] = {}
    for batch in range(3):
        rows = []
        for i in range(batch * 40, batch * 40 + 50):  # batches overlap by 10 people
            email = sha(f"user{i}@example.com")
            rows.append([f"id-{i}", email, ""])
            ours[f"id-{i}"] = {"EXTERN_ID": f"id-{i}", "EMAIL": email}
        graph.add(audience_id, MULTI, rows)
    assert _members(sandbox, audience_id) == as_set(ours.values())
    gone = [f"id-{i}" for i in range(0, 130, 3)]
    graph.remove(audience_id, "EXTERN_ID", gone)
    for key in gone:
        ours.pop(key)
    assert _members(sandbox, audience_id) == as_set(ours.values())
    counters = sandbox.audience(audience_id)["counters"]
    assert counters["adds_matched"] == 20 and counters["removes_unmatched"] == 0


# (id, stored rows as (schema, row), operation, (schema, row), members after)
Upload = tuple[Any, list[Any]]  # (schema, one row)
MATCH_CASES: list[tuple[str, list[Upload], str, Upload, list[dict[str, str]]]] = [
    (
        "same extern id, new email: one person, latest row kept",
        [(["EXTERN_ID", "EMAIL"], ["u1", A])],
        "add",
        (["EXTERN_ID", "EMAIL"], ["u1", B]),
        [{"EXTERN_ID": "u1", "EMAIL": B}],
    ),
    (
        "different extern ids, same email: two people",
        [(["EXTERN_ID", "EMAIL"], ["u1", A])],
        "add",
        (["EXTERN_ID", "EMAIL"], ["u2", A]),
        [{"EXTERN_ID": "u1", "EMAIL": A}, {"EXTERN_ID": "u2", "EMAIL": A}],
    ),
    (
        "email only removes every member with that email",
        [(["EXTERN_ID", "EMAIL"], ["u1", A]), (["EXTERN_ID", "EMAIL"], ["u2", A]), (["EMAIL"], [B])],
        "remove",
        (["EMAIL"], [A]),
        [{"EMAIL": B}],
    ),
    (
        "extern id decides before email",
        [(["EXTERN_ID", "EMAIL"], ["u1", A])],
        "remove",
        (["EXTERN_ID", "EMAIL"], ["u2", A]),
        [{"EXTERN_ID": "u1", "EMAIL": A}],
    ),
    (
        "phone decides when only one side has an email",
        [(["EMAIL", "PHONE"], [A, P1])],
        "remove",
        (["PHONE"], [P1]),
        [],
    ),
    (
        "email decides before phone",
        [(["EMAIL", "PHONE"], [A, P1])],
        "remove",
        (["EMAIL", "PHONE"], [B, P1]),
        [{"EMAIL": A, "PHONE": P1}],
    ),
    (
        "madid matches",
        [(["MADID", "FN"], [MADID, FN])],
        "remove",
        ("MOBILE_ADVERTISER_ID", [MADID]),
        [],
    ),
    (
        "weak keys need every cell equal",
        [(["FN", "LN", "ZIP"], [FN, LN, ZIP])],
        "remove",
        (["FN", "LN"], [FN, LN]),
        [{"FN": FN, "LN": LN, "ZIP": ZIP}],
    ),
    (
        "weak keys all equal",
        [(["FN", "LN", "ZIP"], [FN, LN, ZIP])],
        "remove",
        (["ZIP", "LN", "FN"], [ZIP, LN, FN]),
        [],
    ),
    (
        "single-key add, multi-key remove",
        [("EMAIL_SHA256", [A]), ("EMAIL_SHA256", [B])],
        "remove",
        (["EMAIL", "FN"], [A, FN]),
        [{"EMAIL": B}],
    ),
    (
        "an email row replaces the matching rich row",
        [(["EXTERN_ID", "EMAIL", "PHONE"], ["u1", A, P1])],
        "add",
        (["EMAIL", "FN"], [A, FN]),
        [{"EMAIL": A, "FN": FN}],
    ),
    (
        "a row matching two members replaces both",
        [(["EXTERN_ID", "EMAIL"], ["u1", A]), (["PHONE"], [P1])],
        "add",
        (["EMAIL", "PHONE"], [A, P1]),
        [{"EMAIL": A, "PHONE": P1}],
    ),
]


@pytest.mark.parametrize(
    ("case", "stored", "op", "row", "after"), MATCH_CASES, ids=[c[0] for c in MATCH_CASES]
)
def test_matching_rule(
    graph: Graph,
    sandbox: SandboxControl,
    case: str,
    stored: list[Upload],
    op: str,
    row: Upload,
    after: list[dict[str, str]],
) -> None:
    audience_id = graph.create()
    for schema, cells in stored:
        graph.add(audience_id, schema, [cells])
    schema, cells = row
    (graph.add if op == "add" else graph.remove)(audience_id, schema, [cells])
    assert _members(sandbox, audience_id) == as_set(after)


def test_removing_someone_not_there_counts_unmatched(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A], [B]])
    answer = graph.remove(audience_id, ["EMAIL"], [[A], [C], ["nothashed"]])
    assert (answer["num_received"], answer["num_invalid_entries"]) == (3, 1)
    counters = sandbox.audience(audience_id)["counters"]
    assert (counters["removes_matched"], counters["removes_unmatched"]) == (1, 1)
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": B}])


def test_readding_the_same_row_is_idempotent(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    for _ in range(3):
        graph.add(audience_id, MULTI, [["u1", A, P1], ["u2", B, ""]])
    assert sandbox.member_count(audience_id) == 2


def test_status_and_content_time_follow_uploads(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    before = graph.read(audience_id, "operation_status,time_content_updated")
    assert before["operation_status"]["code"] == 410 and "time_content_updated" not in before
    graph.add(audience_id, ["EMAIL"], [["not hashed"]])  # nothing valid: still no upload
    assert graph.read(audience_id, "operation_status")["operation_status"]["code"] == 410
    graph.add(audience_id, ["EMAIL"], [[sha(f"u{i}")] for i in range(1000)])
    after = graph.read(
        audience_id, "operation_status,time_content_updated,approximate_count_lower_bound,data_source"
    )
    assert after["operation_status"] == {"code": 200, "description": "Normal"}
    assert isinstance(after["time_content_updated"], int)
    assert after["approximate_count_lower_bound"] == 1000
    assert after["data_source"] == {"type": "FILE_IMPORTED", "sub_type": "MULTI_HASHES"}


def test_data_source_stays_that_of_the_first_upload(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A]])
    error = graph_error(graph.users(audience_id, "EMAIL_SHA256", [B]), 2650)
    assert "FILE_IMPORTED.MULTI_HASHES" in error["message"]
    graph.remove(audience_id, "EMAIL_SHA256", [A])  # removals may use either style
    assert sandbox.member_count(audience_id) == 0


def test_value_based_audiences(graph: Graph, sandbox: SandboxControl) -> None:
    plain = graph.create("plain")
    error = graph_error(graph.users(plain, ["EMAIL", "LOOKALIKE_VALUE"], [[A, 44.5]]), 100)
    assert "value-based" in error["error_user_msg"]
    valued = graph.create("valued", is_value_based="true")
    graph_error(graph.users(valued, ["EMAIL"], [[A]]), 100)
    rows = [[A, 44.5], [B, 140], [C, ""], [D, -1], [E, "0.9"]]
    answer = graph.add(valued, ["EMAIL", "LOOKALIKE_VALUE"], rows)
    assert answer["num_invalid_entries"] == 2
    assert set(answer["invalid_entry_samples"].values()) == {
        "LOOKALIKE_VALUE is required for a value-based audience",
        "LOOKALIKE_VALUE must be a number >= 0",
    }
    expected = [{"EMAIL": email, "LOOKALIKE_VALUE": value} for email, value in (rows[0], rows[1], rows[4])]
    assert _members(sandbox, valued) == as_set(expected)
    graph.remove(valued, ["EMAIL"], [[A]])  # removals need no value
    assert sandbox.member_count(valued) == 2


# --- /users sessions ----------------------------------------------------------------------------------


def test_users_without_session_get_a_generated_session_id(graph: Graph) -> None:
    audience_id = graph.create()
    first = graph.add(audience_id, ["EMAIL"], [[A]])
    second = graph.add(audience_id, ["EMAIL"], [[B], [C]])
    assert isinstance(first["session_id"], str) and first["session_id"].isdigit()
    assert first["session_id"] != second["session_id"]
    assert (first["num_received"], second["num_received"]) == (1, 2)


def test_users_session_counts_and_closes(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    session = {"session_id": 777, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 3}
    first = graph.add(audience_id, ["EMAIL"], [[A], ["bad"]], session=session)
    assert (first["session_id"], first["num_received"], first["num_invalid_entries"]) == ("777", 2, 1)
    final = {**session, "batch_seq": 2, "last_batch_flag": True}
    last = graph.add(audience_id, ["EMAIL"], [[B]], session=final)
    assert (last["num_received"], last["num_invalid_entries"]) == (3, 0)
    late = graph.users(audience_id, ["EMAIL"], [[C]], session={**session, "batch_seq": 3})
    graph_error(late, 2650, 1870159)
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": A}, {"EMAIL": B}])


def test_users_session_times_out_after_90_minutes(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    session = {"session_id": 9, "batch_seq": 1}
    graph.add(audience_id, ["EMAIL"], [[A]], session=session)
    sandbox.advance_clock(90 * 60)
    late = graph.users(audience_id, ["EMAIL"], [[B]], session={**session, "batch_seq": 2})
    graph_error(late, 2650, 1870158)
    graph.add(audience_id, ["EMAIL"], [[B]], session={"session_id": 10, "batch_seq": 1})  # a new one works
    assert sandbox.member_count(audience_id) == 2


# --- usersreplace -------------------------------------------------------------------------------------


def _session(seq: int, last: bool = False, session_id: int = 4242) -> dict[str, Any]:
    return {"session_id": session_id, "batch_seq": seq, "last_batch_flag": last, "estimated_num_total": 3}


def test_replace_swaps_the_members_at_the_last_batch(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, MULTI, [["u1", A, ""], ["u2", B, P1], ["u3", C, ""]])
    old = _members(sandbox, audience_id)

    first = graph.replace(audience_id, MULTI, [["u3", C, P2], ["u4", D, ""], ["", E, ""]], _session(1))
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["audience_id"], body["session_id"], body["num_received"], body["num_invalid_entries"]) == (
        audience_id, "4242", 3, 1,
    )  # fmt: skip
    # While the session runs the audience keeps its members, shows 414 and refuses /users.
    assert _members(sandbox, audience_id) == old
    assert graph.read(audience_id, "operation_status")["operation_status"]["code"] == 414
    graph_error(graph.users(audience_id, MULTI, [["u9", F, ""]]), 2650, 1870145)
    graph_error(graph.users(audience_id, MULTI, [["u1", A, ""]], method="DELETE"), 2650, 1870145)
    running = sandbox.audience(audience_id)["replace_session"]
    assert (running["session_id"], running["pending_members"], running["num_received"]) == ("4242", 2, 3)

    # Later batches may repeat a number; they must follow batch 1.
    assert graph.replace(audience_id, MULTI, [["u5", E, ""]], _session(2)).json()["num_received"] == 4
    last = graph.replace(audience_id, MULTI, [["u6", F, ""]], _session(2, last=True))
    assert last.json()["num_received"] == 5
    assert _members(sandbox, audience_id) == as_set(
        [
            {"EXTERN_ID": "u3", "EMAIL": C, "PHONE": P2},
            {"EXTERN_ID": "u4", "EMAIL": D},
            {"EXTERN_ID": "u5", "EMAIL": E},
            {"EXTERN_ID": "u6", "EMAIL": F},
        ]
    )
    assert graph.read(audience_id, "operation_status")["operation_status"]["code"] == 200
    assert sandbox.audience(audience_id)["replace_session"] is None
    graph.add(audience_id, MULTI, [["u7", A, ""]])  # /users works again
    assert sandbox.member_count(audience_id) == 5


def test_replace_with_form_fields_in_one_batch(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, "EMAIL_SHA256", [A, B])
    answer = graph.replace(audience_id, "EMAIL_SHA256", [C], _session(1, last=True), encoding="form")
    assert answer.status_code == 200, answer.text
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": C}])


def test_second_replace_while_one_runs_is_1870145(graph: Graph) -> None:
    audience_id = graph.create()
    assert graph.replace(audience_id, ["EMAIL"], [[A]], _session(1)).status_code == 200
    graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(1, session_id=99)), 2650, 1870145)
    # Batch 1 of the running session again: not a new start either.
    graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(1)), 2650, 1870145)


def test_batch_for_a_finished_session_is_1870159(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    assert graph.replace(audience_id, ["EMAIL"], [[A]], _session(1, last=True)).status_code == 200
    error = graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(2)), 2650, 1870159)
    assert error["error_user_title"] == "Session Already Finished"
    graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(1)), 2650, 1870159)
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": A}])


def test_first_batch_seq_not_1_is_1870147(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A]])
    graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(2)), 2650, 1870147)
    assert graph.read(audience_id, "operation_status")["operation_status"]["code"] == 200
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": A}])


def test_replace_session_times_out_with_what_it_uploaded(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A], [B]])
    graph.replace(audience_id, ["EMAIL"], [[C]], _session(1))
    sandbox.advance_clock(89 * 60)
    assert graph.replace(audience_id, ["EMAIL"], [[D]], _session(2)).status_code == 200
    sandbox.advance_clock(2 * 60)
    status = graph.read(audience_id, "operation_status")["operation_status"]
    assert status["code"] == 415
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": C}, {"EMAIL": D}])
    error = graph_error(graph.replace(audience_id, ["EMAIL"], [[E]], _session(3, last=True)), 2650, 1870158)
    assert error["error_user_title"] == "Session Timed Out"
    graph.add(audience_id, ["EMAIL"], [[E]])  # the audience is usable again
    new_session = _session(1, last=True, session_id=5)
    assert graph.replace(audience_id, ["EMAIL"], [[F]], new_session).status_code == 200
    assert _members(sandbox, audience_id) == as_set([{"EMAIL": F}])


def test_replace_schema_must_stay_the_same(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.replace(audience_id, ["EMAIL", "PHONE"], [[A, P1]], _session(1))
    error = graph_error(graph.replace(audience_id, ["PHONE", "EMAIL"], [[P2, B]], _session(2)), 100)
    assert "EMAIL,PHONE" in error["error_user_msg"]
    same = graph.replace(audience_id, ["EMAIL", "PHONE"], [[B, P2]], _session(2, last=True))
    assert same.status_code == 200
    assert sandbox.member_count(audience_id) == 2


@pytest.mark.parametrize(
    ("session", "field"),
    [
        (None, "session"),
        ({"session_id": 1}, "session.batch_seq"),
        ({"session_id": 1, "batch_seq": 0}, "session.batch_seq"),
    ],
)
def test_replace_needs_a_session_with_batch_seq(graph: Graph, session: Any, field: str) -> None:
    audience_id = graph.create()
    answer = graph.users(audience_id, ["EMAIL"], [[A]], session=session, edge="usersreplace")
    assert graph_error(answer, 100)["error_data"] == {"field": field}


def test_deleting_an_audience_during_a_replace(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.replace(audience_id, ["EMAIL"], [[A]], _session(1))
    assert graph.call("DELETE", audience_id).json() == {"success": True}
    graph_error(graph.replace(audience_id, ["EMAIL"], [[B]], _session(2)), 100, 33)


def test_request_log_records_audience_rows(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, ["EMAIL"], [[A], [B]])
    graph.users(audience_id, ["EMAIL"], [[C]], method="DELETE")
    records = sandbox.requests()[-2:]
    assert [(r["method"], r["audience_id"], r["rows_count"], r["status"]) for r in records] == [
        ("POST", audience_id, 2, 200),
        ("DELETE", audience_id, 1, 200),
    ]
