"""Audiences synced to the sandbox over real HTTP by the service's own worker (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from _service import RunningService, wait_for

from metabridge.delivery.audiences import AudienceWorker
from metabridge.graph import GraphClient
from metabridge.timeutil import now_ms

ACCOUNT = "1001"


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ad_account(live: RunningService, name: str = "EU", account_id: str = ACCOUNT, token: str = "tok-eu") -> int:
    answer = live.http.post("/v1/ad-accounts", json={"name": name, "account_id": account_id, "access_token": token})
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def audience(live: RunningService, audience_id: str = "vip", name: str = "VIP") -> None:
    assert live.http.put(f"/v1/audiences/{audience_id}", json={"name": name}).status_code == 201


def link(live: RunningService, audience_id: str, account: int, keys: list[str], mode: str = "mirror",
         **extra: Any) -> dict:
    answer = live.http.post(f"/v1/audiences/{audience_id}/destinations",
                            json={"ad_account": account, "keys": keys, "mode": mode, **extra})
    assert answer.status_code == 201, answer.text
    return answer.json()


def add(live: RunningService, audience_id: str, members: list[dict]) -> dict:
    answer = live.http.post(f"/v1/audiences/{audience_id}/members", json={"members": members})
    assert answer.status_code == 200, answer.text
    return answer.json()


def remove(live: RunningService, audience_id: str, members: list[dict] | None = None) -> dict:
    if members is None:
        return live.http.delete(f"/v1/audiences/{audience_id}/members").json()
    return live.http.request("DELETE", f"/v1/audiences/{audience_id}/members", json={"members": members}).json()


def meta_members(sandbox, meta_id: str) -> list[dict]:
    return sandbox.all_members(meta_id)


def meta_values(sandbox, meta_id: str, key: str) -> set[str]:
    return {m[key] for m in meta_members(sandbox, meta_id) if key in m}


def settled(live: RunningService, audience_id: str, timeout: float = 60) -> list[dict]:
    """Wait until no job of the audience is queued or running and no sync is due; returns its jobs.

    Jobs, then destinations, then jobs again: a job ending can make a sync due, and the scheduler turns a
    due sync into jobs (each in one transaction), so an unchanged job list around a destination read
    with nothing due means nothing is left to do.
    """
    def state() -> list[tuple[int, str]]:
        return [(j["id"], j["status"]) for j in live.http.get("/v1/jobs", params={"audience": audience_id}).json()]

    def done() -> bool:
        before = state()
        if not before or any(status in ("queued", "running") for _, status in before):
            return False
        dests = live.http.get(f"/v1/audiences/{audience_id}/destinations").json()
        if any(d["next_sync_at"] is not None and d["status"] == "active" for d in dests):
            return False
        return state() == before

    wait_for(done, timeout=timeout, what=f"audience {audience_id} to settle")
    return live.http.get("/v1/jobs", params={"audience": audience_id}).json()


def test_mirror_add_remove_change_and_empty(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    account = ad_account(live)
    audience(live)
    dest = link(live, "vip", account, ["email"])
    meta_id = dest["meta_audience_id"]
    created = sandbox.audience(meta_id)
    assert created["subtype"] == "CUSTOM" and created["name"] == "VIP"
    assert "metabridge" in created["description"] and created["customer_file_source"] == "USER_PROVIDED_ONLY"

    add(live, "vip", [{"email": "ana@example.com"}, {"external_id": "c2", "email": "bo@example.com"},
                      {"email": "cy@example.com"}, {"phone": "+1 650 555 1212"}])
    jobs = settled(live, "vip")
    assert meta_values(sandbox, meta_id, "EMAIL") == {h("ana@example.com"), h("bo@example.com"), h("cy@example.com")}
    adds = [j for j in jobs if j["kind"] == "add" and j["rows_sent"]]
    assert adds and adds[0]["status"] == "done" and adds[0]["num_received"] == 3
    assert adds[0]["rejected_count"] == 1  # the phone-only member has no email for this destination
    assert "no value for this destination's keys (email)" in next(iter(adds[0]["rejected"]["by_reason"]))

    remove(live, "vip", [{"email": "cy@example.com"}])
    add(live, "vip", [{"external_id": "c2", "email": "bo@new.example.com"}])  # changed: removed then re-added
    jobs = settled(live, "vip")
    assert meta_values(sandbox, meta_id, "EMAIL") == {h("ana@example.com"), h("bo@new.example.com")}
    removes = [j for j in jobs if j["kind"] == "remove" and j["rows_sent"]]
    assert removes[0]["rows_sent"] == 2 and removes[0]["status"] == "done"

    got = live.http.get("/v1/audiences/vip").json()
    assert got["member_count"] == 3
    assert got["destinations"][0]["members_in_meta"] == 2
    assert got["last_sync"]["result"] == "ok" and got["last_sync"]["at"]

    remove(live, "vip")  # empty
    settled(live, "vip")
    assert meta_members(sandbox, meta_id) == []
    job = live.http.get(f"/v1/jobs/{removes[0]['id']}").json()
    assert job["kind"] == "remove" and job["started_at"] <= job["finished_at"]


def test_add_only_two_ad_accounts_and_on_demand_sync(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    eu, us = ad_account(live, "EU", "1001", "tok-eu"), ad_account(live, "US", "2002", "tok-us")
    audience(live, "buyers", "Buyers")
    mirror = link(live, "buyers", eu, ["email", "phone"], "mirror")
    sms = link(live, "buyers", us, ["phone"], "add_only")
    people = [{"email": f"p{i}@example.com", "phone": f"+1 650 555 {1000 + i}"} for i in range(5)]
    add(live, "buyers", people)
    settled(live, "buyers")
    assert len(meta_members(sandbox, mirror["meta_audience_id"])) == 5
    assert meta_values(sandbox, sms["meta_audience_id"], "PHONE") == {h(f"1650555{1000 + i}") for i in range(5)}
    assert set(meta_members(sandbox, mirror["meta_audience_id"])[0]) == {"EMAIL", "PHONE"}

    remove(live, "buyers", people[:2])
    settled(live, "buyers")
    assert len(meta_members(sandbox, mirror["meta_audience_id"])) == 3
    assert len(meta_members(sandbox, sms["meta_audience_id"])) == 5  # add_only keeps them

    # someone removes people on Meta's side: an on-demand sync sends only the difference, which is nothing
    sync = live.http.post("/v1/audiences/buyers/sync")
    assert sync.status_code == 202 and sorted(sync.json()["destinations"]) == sorted([mirror["id"], sms["id"]])
    jobs = settled(live, "buyers")
    assert all(j["status"] == "done" for j in jobs)

    listed = live.http.get(f"/v1/ad-accounts/{us}/meta-audiences").json()
    assert [a["id"] for a in listed["data"]] == [sms["meta_audience_id"]]
    assert listed["data"][0]["linked_destinations"] == [sms["id"]]

    remove(live, "buyers")  # emptying removes everything, add_only included
    settled(live, "buyers")
    assert meta_members(sandbox, mirror["meta_audience_id"]) == []
    assert meta_members(sandbox, sms["meta_audience_id"]) == []


def test_delete_refused_while_linked_then_allowed(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    account = ad_account(live)
    audience(live, "gone", "Going away")
    dest = link(live, "gone", account, ["email"], name="EU newsletter")
    refused = live.http.delete("/v1/audiences/gone")
    assert refused.status_code == 409
    assert "'EU newsletter'" in refused.json()["error"]["message"]
    assert refused.json()["error"]["links"][0]["id"] == dest["id"]
    assert live.http.delete(f"/v1/ad-accounts/{account}").status_code == 409
    assert live.http.delete(f"/v1/audiences/gone/destinations/{dest['id']}").status_code == 204
    assert live.http.get("/v1/audiences/gone").json()["destinations"] == []
    assert live.http.delete("/v1/audiences/gone").status_code == 204
    assert live.http.get("/v1/audiences/gone").status_code == 404
    sandbox.audience(dest["meta_audience_id"])  # the Meta audience is left alone


def test_replace_rebuilds_the_meta_audience(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    account = ad_account(live)
    # an audience made by someone else, holding people metabridge does not know
    meta_id = sandbox.create_audience(ACCOUNT, "Legacy list", members=[{"EMAIL": h(f"old{i}@example.com")} for i in range(3)])
    audience(live, "rep", "Replace me")
    add(live, "rep", [{"email": f"new{i}@example.com", "external_id": f"n{i}"} for i in range(25)]
        + [{"email": "noid@example.com"}])
    dest = link(live, "rep", account, ["external_id", "email"], meta_audience_id=meta_id)
    settled(live, "rep")
    assert len(meta_members(sandbox, meta_id)) == 3 + 26  # a diff sync adds; it never touches unknown people

    answer = live.http.post(f"/v1/audiences/rep/destinations/{dest['id']}/replace")
    assert answer.status_code == 202 and answer.json()["kind"] == "replace"
    jobs = settled(live, "rep")
    replace = next(j for j in jobs if j["kind"] == "replace")
    assert replace["status"] == "done" and replace["rows_sent"] == 25 and replace["batch_seq"] == 1
    assert replace["session_id"] and replace["num_received"] == 25
    members = meta_members(sandbox, meta_id)
    assert {m.get("EMAIL") for m in members} == {h(f"new{i}@example.com") for i in range(25)} | {h("noid@example.com")}
    assert {m.get("EXTERN_ID") for m in members} == {f"n{i}" for i in range(25)} | {None}
    listed = live.http.get(f"/v1/ad-accounts/{account}/meta-audiences").json()
    assert [a["id"] for a in listed["data"]] == [meta_id]


def test_terms_not_accepted_needs_a_person(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    account = ad_account(live)
    audience(live, "tos", "Terms")
    sandbox.set_tos(ACCOUNT, False)
    refused = live.http.post("/v1/audiences/tos/destinations", json={"ad_account": account, "keys": ["email"]})
    assert refused.status_code == 409
    assert refused.json()["error"]["reason"] == "needs_person"
    assert "Custom Audience Terms" in refused.json()["error"]["message"]
    assert refused.json()["error"]["meta_error"]["subcode"] == 1870090

    sandbox.set_tos(ACCOUNT, True)
    dest = link(live, "tos", account, ["email"])
    sandbox.set_tos(ACCOUNT, False)
    add(live, "tos", [{"email": "a@example.com"}])
    paused = wait_for(lambda: (d := live.http.get(f"/v1/audiences/tos/destinations/{dest['id']}").json())["status"] == "paused" and d,
                      what="destination paused")
    assert paused["paused_reason"].startswith("needs a person")
    failed = [j for j in live.http.get("/v1/jobs", params={"audience": "tos"}).json() if j["status"] == "failed"]
    assert failed and failed[0]["error"]["class"] == "needs_person"
    sandbox.set_tos(ACCOUNT, True)
    live.http.post("/v1/audiences/tos/sync")  # a person accepted the terms
    settled(live, "tos")
    assert meta_values(sandbox, dest["meta_audience_id"], "EMAIL") == {h("a@example.com")}


def test_rate_limits_are_retried_and_meta_invalid_rows_counted(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    account = ad_account(live)
    audience(live, "rl", "Rate limited")
    dest = link(live, "rl", account, ["madid", "email"])
    settled(live, "rl")
    sandbox.add_fault(count=1, path_contains="/users", error={
        "code": 80003, "http_status": 400, "message": "There have been too many calls to this ad-account."})
    add(live, "rl", [{"email": "a@example.com", "madid": "AB-CD"}, {"madid": "6ECB1F4A" * 8, "email": "b@example.com"}])
    jobs = settled(live, "rl")
    job = next(j for j in jobs if j["kind"] == "add" and j["rows_sent"])
    assert job["status"] == "done" and job["attempts"] == 2
    assert job["rows_sent"] == 2 and job["num_received"] == 2
    # a 64-hex advertising id looks hashed to Meta: counted invalid, with the reason, by Meta
    assert job["num_invalid_entries"] == 1
    assert "MADID" in job["invalid_samples"][0]["reason"]
    assert len(meta_members(sandbox, dest["meta_audience_id"])) == 1


def test_rename_renames_the_meta_audiences_metabridge_created(audience_live: RunningService, sandbox) -> None:
    live = audience_live
    eu, us = ad_account(live, "EU", "1001", "tok-eu"), ad_account(live, "US", "2002", "tok-us")
    audience(live, "season", "Spring buyers")
    created = link(live, "season", eu, ["email"])
    theirs = sandbox.create_audience("2002", "Their own list")
    linked = link(live, "season", us, ["email"], meta_audience_id=theirs)
    add(live, "season", [{"email": "a@example.com"}])
    settled(live, "season")
    assert sandbox.audience(created["meta_audience_id"])["name"] == "Spring buyers"
    synced = live.http.get(f"/v1/audiences/season/destinations/{created['id']}").json()["last_sync"]

    answer = live.http.put("/v1/audiences/season", json={"name": "Summer buyers"})
    assert answer.status_code == 200 and answer.json()["name"] == "Summer buyers"
    renames = [j for j in settled(live, "season") if j["kind"] == "rename"]
    assert [(j["destination"], j["status"], j["trigger"]) for j in renames] == [(created["id"], "done", "rename")]
    assert renames[0]["note"] == "the Meta audience is now named 'Summer buyers'"
    assert sandbox.audience(created["meta_audience_id"])["name"] == "Summer buyers"  # over POST /{audience_id}
    assert sandbox.audience(theirs)["name"] == "Their own list"  # linked, not created by metabridge: left alone
    # a rename is not a member sync: the destination's last sync is still the members' one
    assert live.http.get(f"/v1/audiences/season/destinations/{created['id']}").json()["last_sync"] == synced
    assert meta_values(sandbox, created["meta_audience_id"], "EMAIL") == {h("a@example.com")}
    listed = live.http.get("/v1/jobs", params={"audience": "season", "kind": "rename"}).json()
    assert [j["id"] for j in listed] == [renames[0]["id"]]

    # the same name again (a new description): nothing to rename
    assert live.http.put("/v1/audiences/season", json={"name": "Summer buyers", "description": "hot"}).status_code == 200
    assert [j["id"] for j in settled(live, "season") if j["kind"] == "rename"] == [renames[0]["id"]]

    # someone deleted the Meta audience: the rename fails with Meta's error, recorded on the job
    gone = sandbox.http.delete(f"/v26.0/{created['meta_audience_id']}", params={"access_token": "tok-eu"})
    assert gone.status_code == 200
    live.http.put("/v1/audiences/season", json={"name": "Autumn buyers"})
    failed = [j for j in settled(live, "season") if j["kind"] == "rename" and j["id"] != renames[0]["id"]]
    assert [(j["status"], j["error"]["code"]) for j in failed] == [("failed", 100)]
    destination = live.http.get(f"/v1/audiences/season/destinations/{created['id']}").json()
    assert destination["last_sync"]["result"] == "failed"
    assert live.http.get(f"/v1/audiences/season/destinations/{linked['id']}").json()["status"] == "active"


class RecordingGraph(GraphClient):
    """The worker's Graph client, keeping what each ``/users`` request carried where."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.users: list[tuple[str, list[str], int]] = []  # (method, query parameter names, rows in the body)

    def _send(self, prepared: Any, *, secrets: Any) -> Any:
        if prepared.url.endswith("/users"):
            rows = len(orjson.loads(prepared.content)["payload"]["data"]) if prepared.content else 0
            self.users.append((prepared.method, [name for name, _ in prepared.params], rows))
        return super()._send(prepared, secrets=secrets)


def test_batches_hold_at_most_10000_rows_and_removes_go_in_the_body(audience_api: RunningService, sandbox) -> None:
    api = audience_api  # the API alone; the worker runs here, with a client that records its requests
    audience(api, "wide", "Wide")
    dest = link(api, "wide", ad_account(api), ["email"])
    add(api, "wide", [{"email": f"w{i}@example.com"} for i in range(10_003)])
    with RecordingGraph(base_url=sandbox.base_url) as graph:
        worker = AudienceWorker(api.service.engine, api.service.settings, api.service.box, graph)
        worker.run_once(now_ms=now_ms() + 60_000)  # past the debounce
        remove(api, "wide", [{"email": f"w{i}@example.com"} for i in range(10_002)])
        worker.run_once(now_ms=now_ms() + 60_000)
    assert graph.users == [("POST", ["access_token"], 10_000), ("POST", ["access_token"], 3),
                           ("DELETE", ["access_token"], 10_000), ("DELETE", ["access_token"], 2)]
    assert meta_values(sandbox, dest["meta_audience_id"], "EMAIL") == {h("w10002@example.com")}


def test_meta_audience_listing_follows_every_page(audience_api: RunningService, sandbox) -> None:
    api = audience_api
    account = ad_account(api)
    made = {sandbox.create_audience(ACCOUNT, f"List {i}") for i in range(130)}
    listed = api.http.get(f"/v1/ad-accounts/{account}/meta-audiences").json()
    assert {a["id"] for a in listed["data"]} == made and listed["count"] == 130 and listed["pages"] == 2
    # Meta's "please reduce the amount of data you're asking for" (code 1): smaller pages, still everything
    sandbox.add_fault(count=1, path_contains="/customaudiences", error={
        "code": 1, "http_status": 500, "message": "Please reduce the amount of data you're asking for, then retry"})
    listed = api.http.get(f"/v1/ad-accounts/{account}/meta-audiences").json()
    assert {a["id"] for a in listed["data"]} == made and listed["pages"] == 6


class HookGraph(GraphClient):
    """The worker's Graph client, running ``after_remove`` once Meta answered the first ``DELETE /users``."""

    def __init__(self, *args: Any, after_remove: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.after_remove = after_remove

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = super().request(method, path, **kwargs)
        if method == "DELETE" and path.endswith("/users") and self.after_remove is not None:
            hook, self.after_remove = self.after_remove, None
            hook()
        return answer


def test_a_member_changed_during_a_sync_is_synced_by_the_next_one(audience_api: RunningService, sandbox) -> None:
    """The add job of a mirror sync only sends members Meta holds nothing for (its remove job has just
    compared every row Meta holds): a change landing between the two jobs is left to the next sync."""
    api = audience_api
    audience(api, "race", "Race")
    dest = link(api, "race", ad_account(api), ["external_id", "email"])
    add(api, "race", [{"external_id": "a", "email": "a1@example.com"}, {"email": "b@example.com"}])

    def change_a() -> None:
        add(api, "race", [{"external_id": "a", "email": "a2@example.com"}])

    with HookGraph(base_url=sandbox.base_url, after_remove=change_a) as graph:
        worker = AudienceWorker(api.service.engine, api.service.settings, api.service.box, graph)
        worker.run_once(now_ms=now_ms() + 60_000)
        remove(api, "race", [{"email": "b@example.com"}])
        while worker.run_once(now_ms=now_ms() + 60_000):
            pass
    members = meta_members(sandbox, dest["meta_audience_id"])
    assert members == [{"EXTERN_ID": "a", "EMAIL": h("a2@example.com")}]
    jobs = sorted(api.http.get("/v1/jobs", params={"audience": "race"}).json(), key=lambda j: j["id"])
    assert [(j["kind"], j["rows_sent"]) for j in jobs] == [
        ("remove", 0), ("add", 2),  # first sync
        ("remove", 1), ("add", 0),  # b removed; a changed meanwhile: left to the next sync
        ("remove", 1), ("add", 1),  # a's old row out, its new row in
    ]
