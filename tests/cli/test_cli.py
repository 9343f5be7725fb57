"""The metabridge command as a user runs it: real subprocesses, real files, no stack traces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def metabridge(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "metabridge.cli.main", *args], capture_output=True, cwd=ROOT,
        env={**os.environ, "COLUMNS": "200", **(env or {})}, input=stdin, timeout=120,
    )


def test_preview_json_decisions_and_exact_requests() -> None:
    result = metabridge("events", "preview", str(EXAMPLES / "events.ndjson"),
                        "--connection-config", str(EXAMPLES / "connection.toml"), "--json")
    assert result.returncode == 0, result.stderr.decode()
    preview = orjson.loads(result.stdout)
    actions = [(d["event_id"], d["action"], d["reason"]) for d in preview["decisions"]]
    assert actions[0] == ("ord-1001", "send", None)
    assert ("ord-1002", "skip", "invalid") in actions
    reasons = {d["reason"] for d in preview["decisions"]}
    assert {"no_consent", "insufficient_customer_data", "deduplicated", "invalid"} <= reasons
    assert len(preview["requests"]) == 1
    body = preview["requests"][0]
    assert body["partner_agent"] == "metabridge"
    sent_ids = [e["event_id"] for e in body["data"]]
    assert sent_ids == [d["event_id"] for d in preview["decisions"] if d["action"] == "send"]
    newsletter = next(e for e in body["data"] if e["event_name"] == "Subscribe")  # connection mapping
    assert len(newsletter["user_data"]["em"]) == 64


def test_preview_reads_csv_from_standard_input() -> None:
    csv = b"event,event_id,action_source,user.email,properties.value,properties.currency\npurchase,c1,email,a@example.com,12.5,EUR\n"
    result = metabridge("events", "preview", "-", "--json", stdin=csv)
    assert result.returncode == 0, result.stderr.decode()
    event = orjson.loads(result.stdout)["requests"][0]["data"][0]
    assert event["custom_data"] == {"value": 12.5, "currency": "EUR"}


def test_readable_preview_names_the_field_of_a_skip() -> None:
    result = metabridge("events", "preview", str(EXAMPLES / "events.ndjson"),
                        "-c", str(EXAMPLES / "connection.toml"))
    assert result.returncode == 0
    out = result.stdout.decode()
    assert "skip: invalid" in out and "properties.currency" in out
    assert "request 1" in out


def test_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    bad_config = tmp_path / "c.toml"
    bad_config.write_text('matching = "loose"\npixel = 1\n')
    result = metabridge("events", "preview", str(EXAMPLES / "events.ndjson"), "-c", str(bad_config))
    err = result.stderr.decode()
    assert result.returncode == 2
    assert "matching" in err and "pixel: is not a known setting" in err and "Traceback" not in err
    result = metabridge("events", "preview", str(tmp_path / "missing.json"))
    assert result.returncode == 2 and "cannot open" in result.stderr.decode()


def test_import_queues_events_and_lists_rejects(tmp_path: Path) -> None:
    env = {"METABRIDGE_DATA_DIR": str(tmp_path / "data")}
    # a connection, made through the library the API uses
    code = """
from metabridge.config import load_settings
from metabridge.events import ConnectionSettings
from metabridge.service import Service
from metabridge.store.connections import create_connection

service = Service.open(load_settings())
with service.engine.begin() as conn:
    settings = ConnectionSettings(pixel_id="1234567890", consent_category="marketing")
    create_connection(conn, service.box, name="shop", settings=settings, access_token="t")
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, **env})
    result = metabridge("events", "import", str(EXAMPLES / "events.ndjson"), "--connection", "shop", env=env)
    out = result.stdout.decode()
    assert result.returncode == 1, out  # some events were rejected
    assert "7 accepted" in out and "1 rejected" in out and "properties.currency" in out
    result = metabridge("events", "import", str(EXAMPLES / "events.ndjson"), "--connection", "nope", env=env)
    assert result.returncode == 2 and "no connection named" in result.stderr.decode()


def test_serve_on_embedded_defaults_prints_a_key_and_delivers_to_the_sandbox(tmp_path: Path) -> None:
    import re
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "METABRIDGE_DATA_DIR": str(tmp_path / "data"), "METABRIDGE_PORT": str(port),
           "METABRIDGE_BATCH_LINGER_MS": "100", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        banner = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "SANDBOX" in banner and "nothing leaves this machine" in banner
    key = re.search(r"(mb_[A-Za-z0-9_-]{20,})", banner)
    assert key, banner
    # a second start finds the key already made and prints none
    proc = subprocess.Popen([sys.executable, "-m", "metabridge.cli.main", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        headers = {"Authorization": f"Bearer {key.group(1)}"}
        while True:
            try:
                answer = httpx.get(f"{base}/v1/connections", headers=headers)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.status_code == 200 and answer.json() == []
        created = httpx.post(f"{base}/v1/connections", headers=headers,
                             json={"name": "s", "pixel_id": "42", "access_token": "t"}).json()
        event = {"event": "lead", "action_source": "email", "user": {"email": "x@example.com"}, "event_id": "l1"}
        httpx.post(f"{base}/v1/connections/{created['id']}/events", headers=headers, json=event)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/v1/connections/{created['id']}/events/l1", headers=headers).json()["status"] != "sent":
            assert time.monotonic() < deadline, "the in-process worker did not deliver to the mounted sandbox"
            time.sleep(0.2)
        received = httpx.get(f"{base}/graph/_sandbox/pixels/42/events").json()["data"]
        assert [r["event"]["event_id"] for r in received] == ["l1"]
        proc.send_signal(signal.SIGTERM)
        second = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "mb_" not in second
