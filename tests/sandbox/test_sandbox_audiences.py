"""The sandbox's Custom Audience node and ad-account edge over real HTTP: create, list, read, update,
delete, terms of service, tokens, faults, control API (audiences-and-catalog.md §1, §2.8)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import httpx
import orjson
import pytest
from _audience_graph import ACCOUNT, TOKEN, VERSION, Graph, as_set, graph_error, sha

from metabridge.sandbox import SandboxState
from metabridge.sandbox.control import SandboxControl
from metabridge.sandbox.validation.audiences import CreateSpec

CREATE = {"name": "VIP customers", "subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}


# --- create -------------------------------------------------------------------------------------------


def test_create_with_form_then_read_every_field(graph: Graph) -> None:
    answer = graph.create_raw(**CREATE, description="From the CRM")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["id"] and body["id"].isdigit()
    fields = (
        "id,account_id,name,description,subtype,customer_file_source,approximate_count_lower_bound,"
        "approximate_count_upper_bound,time_created,time_updated,operation_status,delivery_status,"
        "is_value_based"
    )
    audience = graph.read(body["id"], fields)
    assert audience["id"] == body["id"]
    assert audience["account_id"] == ACCOUNT
    assert (audience["name"], audience["description"]) == ("VIP customers", "From the CRM")
    assert (audience["subtype"], audience["customer_file_source"]) == ("CUSTOM", "USER_PROVIDED_ONLY")
    assert audience["approximate_count_lower_bound"] == audience["approximate_count_upper_bound"] == -1
    assert isinstance(audience["time_created"], int) and audience["time_updated"] == audience["time_created"]
    assert audience["operation_status"]["code"] == 410  # no upload yet
    assert audience["delivery_status"]["code"] == 300  # too small
    assert audience["is_value_based"] is False


def test_create_with_json_body_and_defaults_to_id_only(graph: Graph) -> None:
    answer = graph.call("POST", f"act_{ACCOUNT}/customaudiences", json={**CREATE, "is_value_based": True})
    assert answer.status_code == 200, answer.text
    audience_id = answer.json()["id"]
    assert graph.call("GET", audience_id).json() == {"id": audience_id}
    assert graph.read(audience_id, "is_value_based")["is_value_based"] is True


# (id, params, field named in error_data, message fragment)
CREATE_ERRORS: list[tuple[str, dict[str, Any], str, str]] = [
    ("missing name", {"subtype": "CUSTOM", "customer_file_source": "USER_PROVIDED_ONLY"}, "name", "name"),
    ("blank name", {**CREATE, "name": "  "}, "name", "name is required"),
    ("missing subtype", {"name": "x", "customer_file_source": "USER_PROVIDED_ONLY"}, "subtype", "subtype"),
    ("unknown subtype", {**CREATE, "subtype": "CUSTOMER_LIST"}, "subtype", "must be one of"),
    ("subtype not simulated", {**CREATE, "subtype": "WEBSITE"}, "subtype", "only simulates CUSTOM"),
    (
        "missing customer_file_source",
        {"name": "x", "subtype": "CUSTOM"},
        "customer_file_source",
        "Missing parameter(s): customer_file_source",
    ),
    ("bad customer_file_source", {**CREATE, "customer_file_source": "CRM"}, "customer_file_source", "one of"),
    ("bad is_value_based", {**CREATE, "is_value_based": "maybe"}, "is_value_based", "boolean"),
]


@pytest.mark.parametrize(
    ("case", "params", "field", "fragment"), CREATE_ERRORS, ids=[c[0] for c in CREATE_ERRORS]
)
def test_create_validation_errors_name_the_param(
    graph: Graph, sandbox: SandboxControl, case: str, params: dict[str, Any], field: str, fragment: str
) -> None:
    answer = graph.create_raw(**params)
    assert answer.status_code == 400
    error = graph_error(answer, 100)
    assert error["error_data"] == {"field": field}
    assert fragment in error["message"] + error["error_user_msg"]
    assert sandbox.audiences(ACCOUNT) == []


def test_create_on_non_numeric_account_is_unknown_object(graph: Graph) -> None:
    error = graph_error(graph.call("POST", "act_abc/customaudiences", data=CREATE), 100, 33)
    assert "act_abc" in error["message"] and error["type"] == "GraphMethodException"


def test_enable_fetch_or_create_returns_the_existing_audience(graph: Graph, sandbox: SandboxControl) -> None:
    first = graph.create("Same")
    again = graph.create("Same", enable_fetch_or_create="true")
    other = graph.create("Same")  # without the flag: a second audience of the same name
    assert again == first and other != first
    assert len(sandbox.audiences(ACCOUNT)) == 2


def test_500_customer_file_audiences_per_account(
    graph: Graph, sandbox: SandboxControl, sandbox_state: SandboxState
) -> None:
    spec = CreateSpec("bulk", "CUSTOM", "USER_PROVIDED_ONLY")
    for _ in range(499):  # set-up straight in the state: 499 HTTP creates would only slow the suite
        sandbox_state.audiences.create(ACCOUNT, spec)
    graph.create("the 500th")
    error = graph_error(graph.create_raw(**CREATE), 2654)
    assert "500" in error["message"]
    graph.create("other account", account="42")  # the limit is per ad account


# --- terms of service ---------------------------------------------------------------------------------


def test_terms_not_accepted(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    sandbox.set_tos(ACCOUNT, False)
    answer = graph.create_raw(**CREATE)
    assert answer.status_code == 403
    error = graph_error(answer, 200, 1870090)
    assert error["error_user_title"] == "Custom Audience Terms Not Accepted"
    assert error["is_transient"] is False
    users = graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
    graph_error(users, 200, 1870090)
    replace = graph.replace(
        audience_id, "EMAIL_SHA256", [sha("a@example.com")], {"session_id": 1, "batch_seq": 1}
    )
    graph_error(replace, 200, 1870090)
    assert graph.read(audience_id, "name")["name"] == "Customers"  # reads still work
    graph.create(account="777")  # other accounts are not affected
    sandbox.set_tos(ACCOUNT, True)
    assert graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")]).status_code == 200
    assert sandbox.member_count(audience_id) == 1


# --- list ---------------------------------------------------------------------------------------------


def test_list_pages_through_three_pages_following_next(graph: Graph, sandbox: SandboxControl) -> None:
    made_here = [graph.create(f"audience {i}") for i in range(5)]
    by_others = [sandbox.create_audience(f"act_{ACCOUNT}", f"made elsewhere {i}") for i in range(2)]
    graph.create("other account", account="999")
    first = graph.call("GET", f"act_{ACCOUNT}/customaudiences", params={"fields": "id,name", "limit": 3})
    assert first.status_code == 200, first.text
    pages = [first.json()]
    while "next" in pages[-1]["paging"]:
        answer = httpx.get(pages[-1]["paging"]["next"])  # the URL carries the token like Meta's
        assert answer.status_code == 200, answer.text
        pages.append(answer.json())
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    ids = [a["id"] for p in pages for a in p["data"]]
    assert ids == sorted(made_here + by_others, key=int, reverse=True)  # newest first
    assert all(set(a) == {"id", "name"} for p in pages for a in p["data"])
    for page in pages:
        assert set(page["paging"]["cursors"]) == {"before", "after"}
    assert "previous" not in pages[0]["paging"] and "previous" in pages[1]["paging"]

    # after= by hand, and previous/before= back to the first page
    after = pages[0]["paging"]["cursors"]["after"]
    again = graph.call("GET", f"act_{ACCOUNT}/customaudiences", params={"limit": 3, "after": after}).json()
    assert [a["id"] for a in again["data"]] == [a["id"] for a in pages[1]["data"]]
    back = httpx.get(pages[1]["paging"]["previous"]).json()
    assert [a["id"] for a in back["data"]] == [a["id"] for a in pages[0]["data"]]


def test_list_default_limit_25_and_fields(graph: Graph, sandbox: SandboxControl) -> None:
    for i in range(26):
        sandbox.create_audience(ACCOUNT, f"a{i}")
    body = graph.call("GET", f"act_{ACCOUNT}/customaudiences").json()
    assert len(body["data"]) == 25 and "next" in body["paging"]
    assert all(set(a) == {"id"} for a in body["data"])
    fields = "name,operation_status{code},delivery_status,approximate_count_lower_bound"
    one = graph.call("GET", f"act_{ACCOUNT}/customaudiences", params={"fields": fields, "limit": 1}).json()
    audience = one["data"][0]
    assert set(audience) == {
        "id", "name", "operation_status", "delivery_status", "approximate_count_lower_bound"
    }  # fmt: skip
    assert set(audience["operation_status"]) == {"code", "description"}  # sub-fields return the object
    assert audience["operation_status"]["code"] == 410


def test_list_of_an_account_without_audiences(graph: Graph) -> None:
    answer = graph.call("GET", f"act_{ACCOUNT}/customaudiences", params={"fields": "id,name"})
    assert answer.status_code == 200 and answer.json() == {"data": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"fields": "id,nonsense"}, "fields"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
    ],
)
def test_list_bad_params(graph: Graph, params: dict[str, Any], field: str) -> None:
    graph.create()
    error = graph_error(graph.call("GET", f"act_{ACCOUNT}/customaudiences", params=params), 100)
    assert error["error_data"] == {"field": field}


def test_unknown_field_on_node_and_unserved_fields(graph: Graph) -> None:
    audience_id = graph.create()
    error = graph_error(graph.call("GET", audience_id, params={"fields": "name,colour"}), 100)
    assert "nonexisting field (colour)" in error["message"]
    # Real fields a customer list has no value for are accepted and left out, as Graph does.
    assert graph.read(audience_id, "name,rule,lookalike_spec") == {"name": "Customers", "id": audience_id}


# --- update / delete ----------------------------------------------------------------------------------


def test_update_name_and_description(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    sandbox.advance_clock(60)
    answer = graph.call("POST", audience_id, data={"name": "Renamed", "description": "New text"})
    assert answer.status_code == 200 and answer.json() == {"success": True}
    audience = graph.read(audience_id, "name,description,time_created,time_updated")
    assert (audience["name"], audience["description"]) == ("Renamed", "New text")
    assert audience["time_updated"] >= audience["time_created"] + 60
    graph_error(graph.call("POST", audience_id, data={"customer_file_source": "NOPE"}), 100)
    graph_error(graph.call("POST", audience_id, json={"name": ""}), 100)


def test_delete(graph: Graph, sandbox: SandboxControl) -> None:
    keep, drop = graph.create("keep"), graph.create("drop")
    graph.add(drop, "EMAIL_SHA256", [sha("a@example.com")])
    answer = graph.call("DELETE", drop)
    assert answer.status_code == 200 and answer.json() == {"success": True}
    graph_error(graph.call("GET", drop, params={"fields": "name"}), 100, 33)
    graph_error(graph.call("DELETE", drop), 100, 33)
    graph_error(graph.users(drop, "EMAIL_SHA256", [sha("b@example.com")]), 100, 33)
    assert [a["id"] for a in sandbox.audiences(ACCOUNT)] == [keep]
    listed = graph.call("GET", f"act_{ACCOUNT}/customaudiences").json()["data"]
    assert [a["id"] for a in listed] == [keep]


def test_delete_with_post_method_override(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    assert graph.call("POST", audience_id, data={"method": "delete"}).json() == {"success": True}
    assert sandbox.audiences(ACCOUNT) == []


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("POST", ""),
        ("DELETE", ""),
        ("POST", "/users"),
        ("DELETE", "/users"),
        ("POST", "/usersreplace"),
    ],
)
def test_unknown_audience_is_100_33(graph: Graph, method: str, suffix: str) -> None:
    answer = graph.call(method, f"23851999999999999{suffix}", json={})
    error = graph_error(answer, 100, 33)
    assert error["type"] == "GraphMethodException"
    assert "23851999999999999" in error["message"]


def test_non_numeric_audience_id_is_100_33(graph: Graph) -> None:
    graph_error(graph.call("GET", "my-audience"), 100, 33)
    graph_error(graph.users("my-audience", "EMAIL_SHA256", [sha("a")]), 100, 33)


# --- tokens, proofs, faults ---------------------------------------------------------------------------


def test_missing_and_revoked_tokens(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    missing = sandbox.http.post(f"/{VERSION}/act_{ACCOUNT}/customaudiences", data=CREATE)
    graph_error(missing, 104)
    sandbox.revoke_token(TOKEN)
    graph_error(graph.create_raw(**CREATE), 190, 467)
    graph_error(graph.call("GET", f"act_{ACCOUNT}/customaudiences"), 190, 467)
    graph_error(graph.call("GET", audience_id), 190, 467)
    revoked = graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
    graph_error(revoked, 190, 467)
    assert "invalid_token" in revoked.headers["www-authenticate"]
    sandbox.restore_token(TOKEN)
    graph.add(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
    bearer = sandbox.http.get(f"/{VERSION}/{audience_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert bearer.status_code == 200


def test_app_secret_proof_on_audience_endpoints(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    sandbox.set_app_secret("s3cret")
    graph_error(graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")]), 100)
    proof = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    answer = graph.users(
        audience_id, "EMAIL_SHA256", [sha("a@example.com")], params={"appsecret_proof": proof}
    )
    assert answer.status_code == 200, answer.text


def test_rate_limit_fault_on_users_with_usage_header(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    usage = orjson.dumps(
        {ACCOUNT: [{"type": "custom_audience", "call_count": 100, "estimated_time_to_regain_access": 7}]}
    ).decode()
    sandbox.add_fault(
        count=2, error={"code": 80003}, path_contains="/users", headers={"X-Business-Use-Case-Usage": usage}
    )
    assert graph.read(audience_id, "name")["name"] == "Customers"  # other paths are not faulted
    for _ in range(2):
        answer = graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
        error = graph_error(answer, 80003)
        assert answer.status_code == 400 and error["is_transient"] is True
        assert "too many calls" in error["message"]
        assert answer.headers["x-business-use-case-usage"] == usage
    assert sandbox.member_count(audience_id) == 0  # a faulted call changes nothing
    ok = graph.users(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
    assert ok.status_code == 200
    assert sandbox.member_count(audience_id) == 1
    log = [r for r in sandbox.requests() if r["path"].endswith("/users")]
    assert [(r["fault"], r["error_code"]) for r in log] == [(True, 80003), (True, 80003), (False, None)]
    assert log[-1]["audience_id"] == audience_id and log[-1]["rows_count"] == 1


def test_fault_on_usersreplace_and_delay(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    sandbox.add_fault(error={"code": 2, "http_status": 503}, path_contains="/usersreplace")
    session = {"session_id": 5, "batch_seq": 1, "last_batch_flag": True}
    graph_error(graph.replace(audience_id, "EMAIL_SHA256", [sha("a")], session), 2)
    # The faulted batch 1 never started the session: sending it again works.
    assert graph.replace(audience_id, "EMAIL_SHA256", [sha("a")], session).status_code == 200


def test_successful_calls_carry_a_usage_header(graph: Graph) -> None:
    answer = graph.create_raw(**CREATE)
    usage = orjson.loads(answer.headers["x-business-use-case-usage"])
    (entry,) = usage[ACCOUNT]
    assert entry["type"] == "custom_audience" and 0 <= entry["call_count"] <= 100
    assert entry["estimated_time_to_regain_access"] == 0


# --- control API --------------------------------------------------------------------------------------


def test_control_precreated_audience_with_members(graph: Graph, sandbox: SandboxControl) -> None:
    members = [{"EMAIL": sha("a@example.com")}, {"EXTERN_ID": "u-2", "PHONE": sha("15551234567")}]
    audience_id = sandbox.create_audience(
        ACCOUNT, "Made in Ads Manager", description="not ours", members=members
    )
    assert as_set(sandbox.all_members(audience_id)) == as_set(members)
    assert sandbox.member_count(audience_id) == 2
    view = sandbox.audience(audience_id)
    assert (view["origin"], view["member_count"], view["operation_status"]["code"]) == ("control", 2, 200)
    listed = graph.call("GET", f"act_{ACCOUNT}/customaudiences", params={"fields": "name,description"}).json()
    assert listed["data"] == [{"name": "Made in Ads Manager", "description": "not ours", "id": audience_id}]
    plain = {"ad_account_id": ACCOUNT, "name": "x", "members": [{"EMAIL": "plain@x.com"}]}
    bad = sandbox.http.post("/_sandbox/audiences", json=plain)
    assert bad.status_code == 422 and "not hashed" in bad.text
    bad_account = {"ad_account_id": "act_x", "name": "x"}
    assert sandbox.http.post("/_sandbox/audiences", json=bad_account).status_code == 422


def test_control_unknown_audience_is_404(sandbox: SandboxControl) -> None:
    for path in ("/audiences/1", "/audiences/1/members", "/audiences/1/members/count"):
        assert sandbox.http.get(f"/_sandbox{path}").status_code == 404


def test_control_members_paging(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    emails = [sha(f"user{i}@example.com") for i in range(25)]
    graph.add(audience_id, ["EMAIL"], [[e] for e in emails])
    pages = [sandbox.members(audience_id, limit=10, offset=o) for o in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 5]
    assert {m["EMAIL"] for p in pages for m in p} == set(emails)
    answer = sandbox.http.get(f"/_sandbox/audiences/{audience_id}/members", params={"limit": 1}).json()
    assert answer["total"] == 25 and answer["limit"] == 1


def test_reset_clears_audiences_tos_and_clock(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, "EMAIL_SHA256", [sha("a@example.com")])
    sandbox.set_tos("55", False)
    sandbox.advance_clock(3600)
    sandbox.reset()
    assert sandbox.audiences(ACCOUNT) == []
    assert sandbox.http.get(f"/_sandbox/audiences/{audience_id}").status_code == 404
    assert sandbox.http.get("/_sandbox/clock").json()["offset_seconds"] == 0
    graph.create(account="55")  # TOS flags are gone too
    assert graph.create() != audience_id  # ids are never reused
    stats = sandbox.stats()["custom_audiences"]
    assert (stats["audiences"], stats["members"], stats["rows_received"]) == (2, 0, 0)


def test_stats_count_audience_rows(graph: Graph, sandbox: SandboxControl) -> None:
    audience_id = graph.create()
    graph.add(audience_id, "EMAIL_SHA256", [sha("a@example.com"), "plain@example.com"])
    stats = sandbox.stats()
    assert stats["custom_audiences"] == {
        "audiences": 1,
        "members": 1,
        "rows_received": 2,
        "rows_invalid": 1,
        "tos_refused_accounts": [],
    }
    assert stats["requests_by_status"] == {"200": 2}


# --- routing ------------------------------------------------------------------------------------------


def test_audience_routes_do_not_shadow_events_or_control(
    graph: Graph, sandbox: SandboxControl, make_event: Any
) -> None:
    events = {"data": [make_event()]}
    answer = sandbox.http.post(f"/{VERSION}/1234/events", params={"access_token": TOKEN}, json=events)
    assert answer.status_code == 200 and answer.json()["events_received"] == 1
    assert sandbox.http.get("/_sandbox/nothing-here").status_code == 404
    assert sandbox.http.post("/_sandbox/tokens/users", json={}).status_code == 404
    assert sandbox.http.delete("/_sandbox/nothing/users").status_code == 404
    assert sandbox.http.get("/_sandbox/docs").status_code == 200
    assert sandbox.http.get("/_sandbox/health").json() == {"status": "ok"}
    # Unknown edges of an audience still fall to Graph's "unknown object" answer.
    audience_id = graph.create()
    graph_error(graph.call("GET", f"{audience_id}/users"), 100, 33)
    graph_error(graph.call("POST", f"{audience_id}/adsets"), 100, 33)
    graph_error(graph.call("GET", f"{audience_id}/users", token="x"), 100, 33)
