"""Service configuration: environment variables, optionally a TOML file, then defaults.

Every setting is declared once in :data:`SETTINGS` (name, default, meaning); the README's configuration
table is generated from it (``metabridge config --markdown``), so docs and code cannot drift apart.
Precedence: ``METABRIDGE_<NAME>`` environment variable > the TOML file named by ``METABRIDGE_CONFIG`` (or
``--config``) > default.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_GRAPH_VERSION = "v26.0"
#: graph_url value meaning "the sandbox, mounted in this process" (nothing leaves the machine).
SANDBOX = "sandbox"


@dataclass(frozen=True, slots=True)
class Settings:
    """Resolved configuration of one metabridge process."""

    data_dir: Path = field(default=Path(".metabridge"), metadata={"doc": "Folder for the SQLite database and the generated secret key."})
    database_url: str = field(default="", metadata={"doc": "SQLAlchemy URL; empty means SQLite in the data folder. `postgresql://user@host/db` for PostgreSQL."})
    graph_url: str = field(default=SANDBOX, metadata={"doc": "Graph API base URL. `sandbox` mounts the local Graph API simulation in-process; `https://graph.facebook.com` goes live."})
    graph_version: str = field(default=DEFAULT_GRAPH_VERSION, metadata={"doc": "Graph API version used in every path."})
    graph_timeout_seconds: float = field(default=30.0, metadata={"doc": "Timeout of one Graph API HTTP call phase (connect, read, write)."})
    secret_key: str = field(default="", metadata={"doc": "Fernet key encrypting access tokens and app secrets; generated into the data folder when empty."})
    api_key: str = field(default="", metadata={"doc": "An API key accepted in addition to the stored ones (handy for deployments)."})
    host: str = field(default="127.0.0.1", metadata={"doc": "Address `metabridge serve` listens on."})
    port: int = field(default=8080, metadata={"doc": "Port `metabridge serve` listens on."})
    batch_linger_ms: int = field(default=1000, metadata={"doc": "How long a worker waits for a batch to fill to 1,000 events before sending it anyway."})
    lease_seconds: int = field(default=120, metadata={"doc": "How long a worker owns claimed events; a crashed worker's events are re-sent after it."})
    max_event_age_hours: int = field(default=24, metadata={"doc": "After this long without delivery an event is marked failed with its last error."})
    retry_base_seconds: float = field(default=2.0, metadata={"doc": "First retry delay after a transient error (doubles each attempt, with jitter)."})
    retry_max_seconds: float = field(default=300.0, metadata={"doc": "Longest delay between two retries."})
    audience_debounce_seconds: float = field(default=10.0, metadata={"doc": "After an audience's members change, wait this long for more changes before syncing it to Meta."})
    max_body_bytes: int = field(default=20_000_000, metadata={"doc": "Largest ingest request body accepted."})
    retention_days: int = field(default=30, metadata={"doc": "Delivered and skipped events are kept this long for status look-ups and stats."})
    log_level: str = field(default="info", metadata={"doc": "debug, info, warning or error."})

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'metabridge.db').resolve()}"

    @property
    def uses_sandbox(self) -> bool:
        return self.graph_url == SANDBOX


def _coerce(kind: Any, raw: Any, name: str) -> Any:
    target = kind if isinstance(kind, type) else {"Path": Path, "int": int, "float": float, "str": str}[str(kind)]
    try:
        return target(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected {target.__name__}, got {raw!r}") from None


class ConfigError(ValueError):
    """A setting has a value of the wrong type, or the config file cannot be read."""


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the TOML file, the environment, then explicit ``overrides`` (CLI flags)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_file or env.get("METABRIDGE_CONFIG")
    if path:
        try:
            document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
        values.update(document)
    for f in fields(Settings):
        raw = env.get(f"METABRIDGE_{f.name.upper()}")
        if raw is not None and raw != "":
            values[f.name] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    typed = {f.name: _coerce(f.type, values[f.name], f.name) for f in fields(Settings) if f.name in values}
    return Settings(**typed)


def settings_table_markdown() -> str:
    """The README's configuration table."""
    rows = ["| environment variable | TOML key | default | meaning |", "| --- | --- | --- | --- |"]
    for f in fields(Settings):
        default = f.default
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `METABRIDGE_{f.name.upper()}` | `{f.name}` | {shown} | {f.metadata['doc']} |")
    return "\n".join(rows)
