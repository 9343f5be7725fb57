"""The audience API over real HTTP (no worker): audiences, members, export, ad accounts."""

from __future__ import annotations

import csv
import io

from _service import RunningService


def put(api: RunningService, audience_id: str, name: str, **extra: object):
    return api.http.put(f"/v1/audiences/{audience_id}", json={"name": name, **extra})


def test_create_rename_and_unique_names(audience_api: RunningService) -> None:
    created = put(audience_api, "vip", "VIP customers", description="spent > 1000")
    assert created.status_code == 201, created.text
    assert created.json()["member_count"] == 0
    assert created.json()["last_sync"] == {"at": None, "result": None, "error": None}
    assert put(audience_api, "churn", "Churn risk").status_code == 201
    renamed = put(audience_api, "vip", "Top customers")
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Top customers"
    taken = put(audience_api, "churn", "Top customers")
    assert taken.status_code == 409
    assert "'vip'" in taken.json()["error"]["message"]
    assert [a["id"] for a in audience_api.http.get("/v1/audiences").json()] == ["vip", "churn"]
    assert audience_api.http.get("/v1/audiences/nope").status_code == 404
    assert put(audience_api, "bad id!", "x").status_code == 422
    assert audience_api.http.delete("/v1/audiences/churn").status_code == 204
    assert audience_api.http.get("/v1/audiences/churn").status_code == 404


def test_members_add_update_invalid_remove_and_empty(audience_api: RunningService) -> None:
    put(audience_api, "a1", "Audience one")
    members = [
        {"email": "Ana@Example.com", "first_name": "Ana", "country": "PT"},
        {"external_id": "C-2", "email": "bo@example.com", "phone": "+1 650 555 1212"},
        {"email": "not-an-email"},
        {"phone": "+44 20 7946 0958", "gender": "f"},
        {"city": "Paris"},
        {"email": "ana@example.com", "last_name": "Lima"},  # same person as index 0: updates it
        {"email": "cy@example.com", "favourite_colour": "red"},
    ]
    answer = audience_api.http.post("/v1/audiences/a1/members", json={"members": members})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["added"], body["updated"], body["member_count"]) == (3, 0, 3)
    assert [r["index"] for r in body["rejected"]] == [2, 4, 6]
    assert body["rejected"][0]["errors"][0]["field"] == "email"
    assert body["rejected"][1]["errors"][0]["message"].startswith("a member needs")
    assert body["rejected"][2]["errors"][0]["field"] == "favourite_colour"

    again = audience_api.http.post("/v1/audiences/a1/members", json={"members": [
        {"external_id": "C-2", "email": "bo@new.example.com"}, {"email": "dee@example.com"}]}).json()
    assert (again["added"], again["updated"], again["member_count"]) == (1, 1, 4)

    listed = audience_api.http.get("/v1/audiences/a1/members", params={"limit": 2}).json()
    assert [m["data"] for m in listed["data"]] == [
        {"email": "ana@example.com", "last_name": "Lima"},
        {"external_id": "C-2", "email": "bo@new.example.com"},
    ]
    rest = audience_api.http.get("/v1/audiences/a1/members", params={"after": listed["next_after"]}).json()
    assert len(rest["data"]) == 2 and rest["next_after"] is None

    removed = audience_api.http.request("DELETE", "/v1/audiences/a1/members", json={"members": [
        {"email": "ANA@example.com"}, {"email": "nobody@example.com"}, {"email": "bad"}]}).json()
    assert (removed["removed"], removed["not_found"], removed["member_count"]) == (1, 1, 3)
    assert [r["index"] for r in removed["rejected"]] == [2]

    emptied = audience_api.http.delete("/v1/audiences/a1/members").json()
    assert emptied["emptied"] and emptied["removed"] == 3 and emptied["member_count"] == 0
    assert audience_api.http.get("/v1/audiences/a1").json()["member_count"] == 0
    audience_api.http.post("/v1/audiences/a1/members", json={"members": [{"email": "e@example.com"}]})
    assert audience_api.http.request("DELETE", "/v1/audiences/a1/members", json={"members": []}).json()["emptied"]


def test_csv_export_holds_members_as_given(audience_api: RunningService) -> None:
    put(audience_api, "exp", "Export me")
    members = [{"email": f"user{i}@example.com", "first_name": f"Zoë {i}", "zip": "94103-1234"} for i in range(2500)]
    members.append({"external_id": "X,1", "phone": "+1 650 555 0000", "city": 'São "Paulo"'})
    audience_api.http.post("/v1/audiences/exp/members", json={"members": members})
    answer = audience_api.http.get("/v1/audiences/exp/members", params={"format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert 'attachment; filename="audience-exp-members.csv"' == answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 2501
    assert rows[0]["email"] == "user0@example.com" and rows[0]["first_name"] == "Zoë 0"
    assert rows[0]["zip"] == "94103-1234" and rows[0]["phone"] == ""
    assert rows[-1]["external_id"] == "X,1" and rows[-1]["city"] == 'São "Paulo"'


def test_member_calls_validate_the_body(audience_api: RunningService) -> None:
    put(audience_api, "v", "Validation")
    assert audience_api.http.post("/v1/audiences/v/members", content=b"").status_code == 400
    assert audience_api.http.post("/v1/audiences/v/members", content=b"{nope").status_code == 400
    assert audience_api.http.post("/v1/audiences/v/members", json={"members": "x"}).status_code == 422
    assert audience_api.http.post("/v1/audiences/missing/members", json={"members": []}).status_code == 404
    too_many = {"members": [{"email": "a@b.co"}] * 100_001}
    assert audience_api.http.post("/v1/audiences/v/members", json=too_many).status_code == 413


def test_ad_accounts_keep_tokens_secret(audience_api: RunningService) -> None:
    one = audience_api.http.post("/v1/ad-accounts", json={
        "name": "EU", "account_id": "act_1001", "access_token": "tok-eu", "app_secret": "s3cret"})
    assert one.status_code == 201, one.text
    two = audience_api.http.post("/v1/ad-accounts", json={"name": "US", "account_id": "2002", "access_token": "tok-us"})
    assert two.status_code == 201
    assert one.json()["account_id"] == "1001" and one.json()["has_app_secret"]
    assert "tok-eu" not in audience_api.http.get("/v1/ad-accounts").text
    assert len(audience_api.http.get("/v1/ad-accounts").json()) == 2
    assert audience_api.http.post("/v1/ad-accounts", json={
        "name": "EU", "account_id": "3", "access_token": "t"}).status_code == 409
    assert audience_api.http.post("/v1/ad-accounts", json={
        "name": "x", "account_id": "act_abc", "access_token": "t"}).status_code == 422
    from sqlalchemy import select

    from metabridge.store.schema import ad_accounts

    with audience_api.service.engine.connect() as conn:
        stored = conn.execute(select(ad_accounts.c.access_token)).scalars().all()
    assert all("tok-" not in value for value in stored)
