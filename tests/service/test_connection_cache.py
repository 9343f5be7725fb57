"""The service's per-process connection cache (last-read copy + pipeline): dropped when stale, bounded."""

from __future__ import annotations

from test_api_ingest import good_event, stored

from metabridge.events import ConnectionSettings
from metabridge.service import MAX_CACHED_CONNECTIONS
from metabridge.store import connections as store


def ingest(api, cid: int, event_id: str, **changes) -> dict:
    answer = api.http.post(f"/v1/connections/{cid}/events", json=good_event(event_id, **changes))
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_delete_drops_the_connections_copy_and_pipeline(api) -> None:
    kept, deleted = api.connection(name="kept")["id"], api.connection(name="deleted")["id"]
    ingest(api, kept, "k1")
    ingest(api, deleted, "d1")
    assert api.http.post(f"/v1/connections/{deleted}/test-event",
                         json={"event": good_event("t1"), "test_event_code": "TEST1"}).status_code == 200
    assert api.service.cached_connection_ids() == [kept, deleted]
    assert api.http.delete(f"/v1/connections/{deleted}?force=true").status_code == 204
    assert api.service.cached_connection_ids() == [kept]
    assert api.service.known_connection(deleted) is None
    assert api.service.known_connection(kept).id == kept
    assert api.http.post(f"/v1/connections/{deleted}/events", json=good_event("d2")).status_code == 404
    assert api.service.cached_connection_ids() == [kept]


def test_a_connection_deleted_elsewhere_is_dropped_by_the_next_ingest(api) -> None:
    """Another process (a second API) deletes it: ingest finds the copy stale, then the connection gone."""
    cid = api.connection()["id"]
    ingest(api, cid, "e1")
    assert api.service.known_connection(cid) is not None
    with api.service.engine.begin() as conn:
        assert store.delete_connection(conn, cid)
    assert api.http.post(f"/v1/connections/{cid}/events", json=good_event("e2")).status_code == 404
    assert api.service.cached_connection_ids() == []


def test_a_connection_changed_elsewhere_is_read_again_and_its_pipeline_rebuilt(api) -> None:
    cid = api.connection()["id"]
    assert ingest(api, cid, "c1", consent_categories=["analytics"])["pending"] == 1
    before = api.service.known_connection(cid)
    old_pipeline = api.service.pipeline(before)
    with api.service.engine.begin() as conn:  # as another process would, without this one knowing
        changed = store.update_connection(
            conn, api.service.box, cid,
            settings=ConnectionSettings(**{**before.settings.model_dump(), "consent_category": "marketing"}),
        )
    assert changed is not None and changed.updated_at > before.updated_at
    answer = ingest(api, cid, "c2", consent_categories=["analytics"])
    assert (answer["pending"], answer["skipped"]) == (0, 1)  # the new consent rule, though a copy was kept
    after = api.service.known_connection(cid)
    assert after.updated_at == changed.updated_at
    assert after.settings.consent_category == "marketing"
    new_pipeline = api.service.pipeline(after)
    assert new_pipeline is not old_pipeline and new_pipeline.settings.consent_category == "marketing"
    assert api.service.cached_connection_ids() == [cid]
    assert stored(api) == {"c1": "pending", "c2": "skipped"}


def test_patch_replaces_the_kept_copy_and_pipeline_with_the_new_version(api) -> None:
    cid = api.connection()["id"]
    ingest(api, cid, "p1", consent_categories=["analytics"])
    before = api.service.known_connection(cid)
    old_pipeline = api.service.pipeline(before)
    answer = api.http.patch(f"/v1/connections/{cid}", json={"consent_category": "marketing"})
    assert answer.status_code == 200, answer.text
    after = api.service.known_connection(cid)
    assert after.updated_at > before.updated_at and after.settings.consent_category == "marketing"
    new_pipeline = api.service.pipeline(after)
    assert new_pipeline is not old_pipeline and new_pipeline.settings.consent_category == "marketing"
    assert ingest(api, cid, "p2", consent_categories=["analytics"])["skipped"] == 1


def test_the_least_recently_used_connection_is_dropped_beyond_the_cap(api) -> None:
    api.service.connection_cache_size = 2
    a, b, c = (api.connection(name=name)["id"] for name in "abc")
    ingest(api, a, "a1")
    ingest(api, b, "b1")
    assert api.service.cached_connection_ids() == [a, b]
    ingest(api, a, "a2")  # a is used again: b is now the least recently used
    assert api.service.cached_connection_ids() == [b, a]
    ingest(api, c, "c1")
    assert api.service.cached_connection_ids() == [a, c]
    assert api.service.known_connection(b) is None
    ingest(api, b, "b2")  # a dropped connection is simply read again
    assert api.service.cached_connection_ids() == [c, b]
    assert set(stored(api)) == {"a1", "a2", "b1", "b2", "c1"}


def test_the_default_cap_bounds_a_process_that_sees_many_connections(api) -> None:
    settings = ConnectionSettings(pixel_id="1234567890")
    with api.service.engine.begin() as conn:
        many = [store.create_connection(conn, api.service.box, name=f"c{n}", settings=settings,
                                        access_token="tok") for n in range(MAX_CACHED_CONNECTIONS + 2)]
    first_pipeline = api.service.pipeline(many[0])
    for connection in many:
        api.service.remember(connection)
    ids = api.service.cached_connection_ids()
    assert len(ids) == MAX_CACHED_CONNECTIONS
    assert ids == [c.id for c in many[2:]]
    # a dropped connection comes back with a pipeline of its own (the old one, and its customers, are gone)
    assert api.service.pipeline(many[0]) is not first_pipeline
    assert api.service.cached_connection_ids()[-1] == many[0].id
    assert len(api.service.cached_connection_ids()) == MAX_CACHED_CONNECTIONS
