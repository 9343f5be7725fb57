"""In-memory Custom Audiences of one sandbox: audiences, their members, upload sessions, TOS flags.

:class:`SandboxState` owns one :class:`AudienceStore` (``state.audiences``) and replaces it on reset, so a
request still running when the reset happens writes into the old store and is forgotten with it.
Audience ids come from a process-wide counter and are never reused, even across resets.

Membership model
    Each audience holds a :class:`MemberSet` of *member records* (``(shape, v1, v2, ...)``, see
    ``validation/audiences.py``): the non-empty cells of each valid row, keyed by schema key. Two records
    are the **same person** when, walking ``MATCH_KEYS`` = EXTERN_ID, EMAIL, PHONE, MADID in that order,
    the first key *both* records have holds the same value in both; when they share none of those keys,
    when all their identity cells (keys and values; LOOKALIKE_VALUE and DATA_PROCESSING_OPTIONS* are not
    identity) are equal. So ``{EXTERN_ID: u1, EMAIL: a}`` and ``{EXTERN_ID: u1, EMAIL: b}`` are one person,
    ``{EXTERN_ID: u1, EMAIL: a}`` and ``{EXTERN_ID: u2, EMAIL: a}`` are two, ``{EMAIL: a}`` matches both,
    ``{EMAIL: a, PHONE: p}`` and ``{EMAIL: b, PHONE: p}`` are two (EMAIL decides before PHONE), and
    ``{FN, LN, ZIP}`` rows match only when all three are equal. MADID is a match key too (after PHONE):
    an advertising id names one device as surely as an email names one person.

    - add: every stored member matching the row is replaced by the row (an upsert: the latest row wins,
      the audience holds one record per person);
    - remove: every stored member matching the row is deleted; a row matching nobody counts as unmatched.

    Lookups are dict hits: each record is filed under its *primary key* (its first match key, or its whole
    identity when it has none), which is unique in a set, plus a secondary index per further match key.

Sessions (§2.4, §2.5)
    ``/users`` sessions only count ``num_received``; a batch after the session's last batch is refused
    with 2650/1870159 and one after :data:`SESSION_WINDOW_SECONDS` with 2650/1870158 ([sandbox]: Meta
    says such batches are discarded; an error makes the loss visible).

    A ``usersreplace`` session builds a new member set beside the current one (which keeps serving, and
    which ``/_sandbox/audiences/{id}/members`` shows, while the session runs with operation_status 414);
    at ``last_batch_flag`` the audience becomes exactly that set. A replace session still open after the
    window is closed the same way (the audience becomes what was uploaded) with operation_status 415.
    Sessions are checked lazily, whenever the audience is touched. Time comes from the state's clock,
    which ``/_sandbox/clock/advance`` moves forward.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

from metabridge.sandbox.validation.audiences import (
    IDENTITY_KEYS,
    MATCH_KEYS,
    MAX_CUSTOMER_FILE_AUDIENCES,
    OPERATION_STATUS,
    SESSION_WINDOW_SECONDS,
    CreateSpec,
    Schema,
    SessionSpec,
    approximate_bounds,
    delivery_status,
)

__all__ = ["Audience", "AudienceError", "AudienceStore", "MemberSet", "UploadOutcome", "UploadSession"]

Record = tuple[Any, ...]

#: Audience ids look like Meta's (17 digits) and increase, so listing order and cursors follow them.
_AUDIENCE_IDS = itertools.count(23_851_000_000_000_001)
_SESSION_IDS = itertools.count(4_229_955_495_815_004_260)
_ids_lock = threading.Lock()

#: Sessions remembered per audience (finished ones are dropped oldest first beyond this).
MAX_SESSIONS_PER_AUDIENCE = 1_000
#: BUC budget of custom-audience calls per ad account and rolling hour (§2.8, Standard Access).
BUC_BASE_CALLS = 5_000
BUC_CALLS_PER_AUDIENCE = 40
BUC_WINDOW_SECONDS = 3_600


def _next_id(counter: Iterator[int]) -> str:
    with _ids_lock:
        return str(next(counter))


class AudienceError(Exception):
    """The store refuses an operation; ``kind`` is a key of ``validation.audiences.STORE_ERRORS``
    (or ``"unknown_audience"``)."""

    def __init__(self, kind: str, **details: Any) -> None:
        super().__init__(kind)
        self.kind = kind
        self.details = details


# -- members ----------------------------------------------------------------------------------------------
_WEAK = len(MATCH_KEYS)


@dataclass(frozen=True, slots=True)
class _ShapeInfo:
    #: (match level, record position) for each match key in the shape, by level.
    strong: tuple[tuple[int, int], ...]
    #: per match level: record position, or 0 when the shape lacks that key.
    level_pos: tuple[int, ...]
    identity_keys: tuple[str, ...]
    identity_pos: tuple[int, ...]


_SHAPE_INFO: dict[tuple[str, ...], _ShapeInfo] = {}


def _info(shape: tuple[str, ...]) -> _ShapeInfo:
    info = _SHAPE_INFO.get(shape)
    if info is None:
        positions = {key: i + 1 for i, key in enumerate(shape)}
        level_pos = tuple(positions.get(key, 0) for key in MATCH_KEYS)
        info = _ShapeInfo(
            strong=tuple((level, pos) for level, pos in enumerate(level_pos) if pos),
            level_pos=level_pos,
            # sorted: the same cells in another column order are the same identity
            identity_keys=tuple(sorted(k for k in shape if k in IDENTITY_KEYS)),
            identity_pos=tuple(positions[k] for k in sorted(shape) if k in IDENTITY_KEYS),
        )
        info = _SHAPE_INFO.setdefault(shape, info)
    return info


def _identity(record: Record, info: _ShapeInfo) -> tuple[Any, ...]:
    return (info.identity_keys, *(record[p] for p in info.identity_pos))


def _same_person(a: Record, b: Record, b_info: _ShapeInfo) -> bool:
    a_info = _info(a[0])
    for level in range(_WEAK):
        pa = a_info.level_pos[level]
        pb = b_info.level_pos[level]
        if pa and pb:
            return bool(a[pa] == b[pb])
    return _identity(a, a_info) == _identity(b, b_info)


def record_to_mapping(record: Record) -> dict[str, Any]:
    """``(shape, v...)`` -> ``{key: value}``."""
    return dict(zip(record[0], record[1:]))


class MemberSet:
    """The members of one audience (or of a replace session being built). Not thread-safe by itself."""

    __slots__ = ("_primary", "_secondary")

    def __init__(self) -> None:
        # level -> {value: record}; the last one: {identity tuple: record} for records with no match key.
        self._primary: list[dict[Any, Record]] = [{} for _ in range(_WEAK + 1)]
        # level -> {value: record | [records]} for records whose primary key is an earlier level.
        self._secondary: list[dict[Any, Any]] = [{} for _ in range(_WEAK)]

    def __len__(self) -> int:
        return sum(len(d) for d in self._primary)

    def __iter__(self) -> Iterator[Record]:
        return chain.from_iterable(d.values() for d in self._primary)

    def page(self, offset: int, limit: int) -> list[Record]:
        return list(islice(iter(self), offset, offset + limit))

    def _find(self, record: Record, info: _ShapeInfo) -> list[Record]:
        strong = info.strong
        if not strong:
            hit = self._primary[_WEAK].get(_identity(record, info))
            return [] if hit is None else [hit]
        found: list[Record] = []
        first = True
        for level, pos in strong:
            value = record[pos]
            hit = self._primary[level].get(value)
            # A record filed under the row's first match key shares no earlier key with it: same person.
            if hit is not None and (first or _same_person(hit, record, info)):
                found.append(hit)
            first = False
            extra = self._secondary[level].get(value)
            if extra is not None:
                for other in extra if type(extra) is list else (extra,):
                    if _same_person(other, record, info) and not any(other is f for f in found):
                        found.append(other)
        if len(found) > 1:
            unique: list[Record] = []
            for f in found:
                if not any(f is u for u in unique):
                    unique.append(f)
            found = unique
        return found

    def _link(self, record: Record, info: _ShapeInfo) -> None:
        strong = info.strong
        if not strong:
            self._primary[_WEAK][_identity(record, info)] = record
            return
        level, pos = strong[0]
        self._primary[level][record[pos]] = record
        for level, pos in strong[1:]:
            index = self._secondary[level]
            value = record[pos]
            current = index.get(value)
            if current is None:
                index[value] = record
            elif type(current) is list:
                current.append(record)
            else:
                index[value] = [current, record]

    def _unlink(self, record: Record) -> None:
        info = _info(record[0])
        strong = info.strong
        if not strong:
            del self._primary[_WEAK][_identity(record, info)]
            return
        level, pos = strong[0]
        del self._primary[level][record[pos]]
        for level, pos in strong[1:]:
            index = self._secondary[level]
            value = record[pos]
            current = index[value]
            if type(current) is list:
                current[:] = [r for r in current if r is not record]
                if len(current) == 1:
                    index[value] = current[0]
                elif not current:
                    del index[value]
            else:
                del index[value]

    def add(self, record: Record) -> bool:
        """Upsert: replace every member matching ``record`` by it. True if it matched someone."""
        info = _info(record[0])
        found = self._find(record, info)
        if len(found) == 1 and found[0] == record:
            return True
        for member in found:
            self._unlink(member)
        self._link(record, info)
        return bool(found)

    def remove(self, record: Record) -> int:
        """Delete every member matching ``record``; returns how many."""
        found = self._find(record, _info(record[0]))
        for member in found:
            self._unlink(member)
        return len(found)

    def add_many(self, records: Iterable[Record]) -> tuple[int, int]:
        """:meth:`add` each record; returns ``(rows, rows that matched a member)``.

        Fast paths (plain dict membership tests, no per-row calls): a row whose match-key values are in no
        index is a new person and is filed directly; a row with one match key while no member is filed
        under that key as a secondary one is decided by a single lookup. Anything else takes :meth:`add`.
        """
        rows = matched = 0
        shape: Any = None
        single = False
        levels: list[tuple[int, dict[Any, Record], dict[Any, Any]]] = []
        primary: dict[Any, Record] = {}
        secondary: dict[Any, Any] = {}
        pos = 0
        by_shape: dict[Any, list[tuple[int, dict[Any, Record], dict[Any, Any]]]] = {}  # rows alternate shapes
        for record in records:
            rows += 1
            if record[0] is not shape:
                shape = record[0]
                found = by_shape.get(shape)
                if found is None:
                    found = by_shape[shape] = [
                        (p, self._primary[lv], self._secondary[lv]) for lv, p in _info(shape).strong
                    ]
                levels = found
                single = len(levels) == 1
                if levels:
                    pos, primary, secondary = levels[0]
            if single and not secondary:
                value = record[pos]
                hit = primary.get(value)
                if hit is None:
                    primary[value] = record
                    continue
                matched += 1
                if hit != record:
                    self._unlink(hit)
                    primary[value] = record
                continue
            if levels:
                for p, prim, sec in levels:
                    value = record[p]
                    if value in prim or value in sec:
                        break
                else:  # nobody shares a match-key value: a new person
                    primary[record[pos]] = record
                    for p, _, sec in levels[1:]:
                        sec[record[p]] = record
                    continue
            matched += self.add(record)
        return rows, matched

    def remove_many(self, records: Iterable[Record]) -> tuple[int, int, int]:
        """:meth:`remove` each record; returns ``(rows, rows that matched, members removed)``."""
        rows = matched = removed = 0
        shape: Any = None
        single = False
        primary: dict[Any, Record] = {}
        secondary: dict[Any, Any] = {}
        pos = 0
        for record in records:
            rows += 1
            if record[0] is not shape:
                shape = record[0]
                info = _info(shape)
                single = len(info.strong) == 1
                if single:
                    level, pos = info.strong[0]
                    primary, secondary = self._primary[level], self._secondary[level]
            if single and not secondary:
                hit = primary.get(record[pos])
                if hit is not None:
                    self._unlink(hit)
                    matched += 1
                    removed += 1
                continue
            count = self.remove(record)
            removed += count
            matched += count > 0
        return rows, matched, removed


# -- audiences --------------------------------------------------------------------------------------------
@dataclass(slots=True)
class UploadSession:
    """One upload session of an audience (``kind`` ``users`` or ``replace``)."""

    session_id: int
    kind: str
    started_at: float
    signature: str
    num_received: int = 0
    num_invalid: int = 0
    batches: int = 0
    last_batch_seq: int = 0
    estimated_num_total: int | None = None
    finished: bool = False
    timed_out: bool = False
    members: MemberSet | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id),
            "kind": self.kind,
            "started_at": self.started_at,
            "schema": self.signature,
            "num_received": self.num_received,
            "num_invalid_entries": self.num_invalid,
            "batches": self.batches,
            "last_batch_seq": self.last_batch_seq,
            "estimated_num_total": self.estimated_num_total,
            "finished": self.finished,
            "timed_out": self.timed_out,
            "pending_members": None if self.members is None else len(self.members),
        }


@dataclass(slots=True)
class Audience:
    id: str
    account_id: str
    name: str
    subtype: str
    customer_file_source: str
    description: str | None
    is_value_based: bool
    origin: str
    time_created: int
    time_updated: int
    time_content_updated: int | None = None
    operation_status: int = 410
    data_source: str | None = None
    members: MemberSet = field(default_factory=MemberSet)
    replace: UploadSession | None = None
    sessions: dict[tuple[str, int], UploadSession] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    session_id: int
    num_received: int


class AudienceStore:
    """Every audience of one sandbox. Thread-safe (one lock; uploads hold it for one request's rows)."""

    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._audiences: dict[str, Audience] = {}
        self._by_account: dict[str, dict[str, None]] = {}
        self._tos_refused: set[str] = set()
        self._calls: dict[str, deque[float]] = {}
        self.rows_received = 0
        self.rows_invalid = 0

    # -- terms of service and usage ----------------------------------------------------------------------
    def set_tos(self, ad_account_id: str, accepted: bool) -> None:
        with self._lock:
            if accepted:
                self._tos_refused.discard(ad_account_id)
            else:
                self._tos_refused.add(ad_account_id)

    def tos_accepted(self, ad_account_id: str) -> bool:
        with self._lock:
            return ad_account_id not in self._tos_refused

    def note_call(self, ad_account_id: str) -> int:
        """Count one custom-audience call of the account; returns the BUC ``call_count`` percentage."""
        now = self._clock()
        with self._lock:
            calls = self._calls.setdefault(ad_account_id, deque())
            calls.append(now)
            while calls and calls[0] <= now - BUC_WINDOW_SECONDS:
                calls.popleft()
            active = len(self._by_account.get(ad_account_id, ()))
            budget = BUC_BASE_CALLS + BUC_CALLS_PER_AUDIENCE * active
            return min(100, len(calls) * 100 // budget)

    # -- audiences ---------------------------------------------------------------------------------------
    def create(
        self, ad_account_id: str, spec: CreateSpec, *, origin: str = "graph", check_tos: bool = True
    ) -> tuple[str, bool]:
        """Create an audience; returns ``(id, created)`` (``created`` False for enable_fetch_or_create)."""
        now = int(self._clock())
        with self._lock:
            if check_tos and ad_account_id in self._tos_refused:
                raise AudienceError("tos_not_accepted", ad_account_id=ad_account_id)
            ids = self._by_account.get(ad_account_id, {})
            if spec.enable_fetch_or_create:
                for audience_id in ids:
                    a = self._audiences[audience_id]
                    if (a.name, a.subtype, a.customer_file_source, a.is_value_based) == (
                        spec.name, spec.subtype, spec.customer_file_source, spec.is_value_based,
                    ):  # fmt: skip
                        return a.id, False
            customer_files = sum(1 for i in ids if self._audiences[i].subtype == "CUSTOM")
            if spec.subtype == "CUSTOM" and customer_files >= MAX_CUSTOMER_FILE_AUDIENCES:
                raise AudienceError(
                    "audience_limit", ad_account_id=ad_account_id, limit=MAX_CUSTOMER_FILE_AUDIENCES
                )
            audience = Audience(
                id=_next_id(_AUDIENCE_IDS),
                account_id=ad_account_id,
                name=spec.name,
                subtype=spec.subtype,
                customer_file_source=spec.customer_file_source,
                description=spec.description,
                is_value_based=spec.is_value_based,
                origin=origin,
                time_created=now,
                time_updated=now,
            )
            self._audiences[audience.id] = audience
            self._by_account.setdefault(ad_account_id, {})[audience.id] = None
            return audience.id, True

    def _get(self, audience_id: str) -> Audience:
        audience = self._audiences.get(audience_id)
        if audience is None:
            raise AudienceError("unknown_audience", audience_id=audience_id)
        self._expire(audience, self._clock())
        return audience

    def account_of(self, audience_id: str) -> tuple[str, bool]:
        """``(ad account id, is_value_based)`` of an audience; raises ``unknown_audience``."""
        with self._lock:
            audience = self._get(audience_id)
            return audience.account_id, audience.is_value_based

    def update(self, audience_id: str, changes: dict[str, Any]) -> None:
        with self._lock:
            audience = self._get(audience_id)
            for name, value in changes.items():
                setattr(audience, name, value)
            audience.time_updated = int(self._clock())

    def delete(self, audience_id: str) -> None:
        with self._lock:
            audience = self._get(audience_id)
            del self._audiences[audience_id]
            self._by_account[audience.account_id].pop(audience_id, None)

    # -- reading -----------------------------------------------------------------------------------------
    def _view(self, audience: Audience, *, control: bool) -> dict[str, Any]:
        count = len(audience.members)
        lower, upper = approximate_bounds(count)
        view: dict[str, Any] = {
            "id": audience.id,
            "account_id": audience.account_id,
            "name": audience.name,
            "description": audience.description,
            "subtype": audience.subtype,
            "customer_file_source": audience.customer_file_source,
            "approximate_count_lower_bound": lower,
            "approximate_count_upper_bound": upper,
            "time_created": audience.time_created,
            "time_updated": audience.time_updated,
            "time_content_updated": audience.time_content_updated,
            "operation_status": {
                "code": audience.operation_status,
                "description": OPERATION_STATUS[audience.operation_status],
            },
            "delivery_status": delivery_status(count),
            "data_source": None
            if audience.data_source is None
            else {"type": "FILE_IMPORTED", "sub_type": audience.data_source},
            "is_value_based": audience.is_value_based,
        }
        if control:
            view["member_count"] = count
            view["origin"] = audience.origin
            view["counters"] = dict(audience.counters)
            view["replace_session"] = None if audience.replace is None else audience.replace.to_json()
        return view

    def view(self, audience_id: str, *, control: bool = False) -> dict[str, Any]:
        """Every field of an audience (``None`` where Graph would leave the field out)."""
        with self._lock:
            return self._view(self._get(audience_id), control=control)

    def list_views(
        self,
        ad_account_id: str,
        *,
        limit: int,
        after: int | None = None,
        before: int | None = None,
        control: bool = False,
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        """A page of the account's audiences, newest first: ``(views, more after, more before)``."""
        now = self._clock()
        with self._lock:
            ids = sorted((int(i) for i in self._by_account.get(ad_account_id, {})), reverse=True)
            if after is not None:
                start = next((n for n, i in enumerate(ids) if i < after), len(ids))
                end = start + limit
            elif before is not None:
                end = next((n for n, i in enumerate(ids) if i <= before), len(ids))
                start = max(0, end - limit)
            else:
                start, end = 0, limit
            audiences = [self._audiences[str(i)] for i in ids[start:end]]
            for audience in audiences:
                self._expire(audience, now)
            views = [self._view(a, control=control) for a in audiences]
            return views, end < len(ids), start > 0

    def control_views(
        self, ad_account_id: str, *, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """The account's audiences oldest first, with member counts and sessions; and their total."""
        with self._lock:
            ids = list(self._by_account.get(ad_account_id, {}))
            now = self._clock()
            views = []
            for audience_id in ids[offset : offset + limit]:
                audience = self._audiences[audience_id]
                self._expire(audience, now)
                views.append(self._view(audience, control=True))
            return views, len(ids)

    def members(
        self, audience_id: str, *, offset: int = 0, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the stored members as ``{schema key: value}`` and the member count."""
        with self._lock:
            audience = self._get(audience_id)
            records = audience.members.page(offset, limit)
            return [record_to_mapping(r) for r in records], len(audience.members)

    def member_count(self, audience_id: str) -> int:
        with self._lock:
            return len(self._get(audience_id).members)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "audiences": len(self._audiences),
                "members": sum(len(a.members) for a in self._audiences.values()),
                "rows_received": self.rows_received,
                "rows_invalid": self.rows_invalid,
                "tos_refused_accounts": sorted(self._tos_refused),
            }

    # -- uploads -----------------------------------------------------------------------------------------
    def _expire(self, audience: Audience, now: float) -> None:
        """Close a replace session older than the window: the audience becomes what it uploaded (415)."""
        session = audience.replace
        if session is not None and now - session.started_at >= SESSION_WINDOW_SECONDS:
            assert session.members is not None
            audience.members = session.members
            session.members = None
            session.timed_out = True
            audience.replace = None
            audience.operation_status = 415
            audience.time_content_updated = int(now)

    def _remember(self, audience: Audience, session: UploadSession) -> None:
        sessions = audience.sessions
        sessions[(session.kind, session.session_id)] = session
        if len(sessions) > MAX_SESSIONS_PER_AUDIENCE:
            for key in [k for k, s in sessions.items() if s.finished or s.timed_out][: len(sessions) // 2]:
                del sessions[key]

    def upload(
        self,
        audience_id: str,
        op: str,
        schema: Schema,
        records: Iterable[tuple[Any, ...]],
        *,
        received: int,
        invalid: int,
        session: SessionSpec | None,
        check_tos: bool = True,
    ) -> UploadOutcome:
        """Apply one ``/users`` (``op`` add or remove) or ``/usersreplace`` (``replace``) request.

        ``records`` are the request's valid rows; ``received`` counts all rows, ``invalid`` the bad ones.
        Raises :class:`AudienceError` for the session and state rules; nothing is applied then.
        """
        now = self._clock()
        with self._lock:
            audience = self._get(audience_id)
            if check_tos and audience.account_id in self._tos_refused:
                raise AudienceError("tos_not_accepted", ad_account_id=audience.account_id)
            if op != "remove" and audience.data_source not in (None, schema.data_source):
                raise AudienceError(
                    "data_source_mismatch", expected=audience.data_source, got=schema.data_source
                )
            if op == "replace":
                assert session is not None and session.batch_seq is not None
                upload = self._replace_batch(audience, schema, session, now)
            else:
                if audience.replace is not None:
                    raise AudienceError("replace_in_progress")
                upload = self._users_batch(audience, session, schema, now)

            # Every check passed: apply.
            self.rows_received += received
            self.rows_invalid += invalid
            audience.counters["rows_received"] += received
            audience.counters["rows_invalid"] += invalid
            if upload is None:
                session_id, num_received = int(_next_id(_SESSION_IDS)), received
            else:
                assert session is not None
                if upload.kind == "replace" and audience.replace is None:
                    audience.replace = upload
                    audience.operation_status = 414
                self._remember(audience, upload)
                upload.num_received += received
                upload.num_invalid += invalid
                upload.batches += 1
                upload.last_batch_seq = max(upload.last_batch_seq, session.batch_seq or 0)
                if session.estimated_num_total is not None:
                    upload.estimated_num_total = session.estimated_num_total
                session_id, num_received = upload.session_id, upload.num_received
            applied = self._apply(audience, op, upload, records)
            if op != "remove" and applied and audience.data_source is None:
                audience.data_source = schema.data_source
            if applied and op != "replace":
                audience.time_content_updated = int(now)
                audience.operation_status = 200
            if upload is not None and session is not None and session.last_batch_flag:
                if upload.kind == "replace":
                    self._finish_replace(audience, upload, now)
                else:
                    upload.finished = True
            return UploadOutcome(session_id, num_received)

    def _users_batch(
        self, audience: Audience, session: SessionSpec | None, schema: Schema, now: float
    ) -> UploadSession | None:
        if session is None:
            return None
        existing = audience.sessions.get(("users", session.session_id))
        if existing is None:
            return UploadSession(session.session_id, "users", now, schema.signature)
        if existing.finished:
            raise AudienceError("session_finished")
        if now - existing.started_at >= SESSION_WINDOW_SECONDS:
            existing.timed_out = True
            raise AudienceError("session_timed_out")
        return existing

    def _replace_batch(
        self, audience: Audience, schema: Schema, session: SessionSpec, now: float
    ) -> UploadSession:
        existing = audience.sessions.get(("replace", session.session_id))
        if existing is not None:
            if existing.finished:
                raise AudienceError("session_finished")
            if existing.timed_out:
                raise AudienceError("session_timed_out")
            if session.batch_seq == 1:  # [sandbox] batch 1 resent while its session runs
                raise AudienceError("replace_in_progress")
            if schema.signature != existing.signature:
                raise AudienceError("schema_changed", expected=existing.signature, got=schema.signature)
            return existing
        if session.batch_seq != 1:
            raise AudienceError("first_batch_missing")
        if audience.replace is not None:
            raise AudienceError("replace_in_progress")
        return UploadSession(session.session_id, "replace", now, schema.signature, members=MemberSet())

    def _finish_replace(self, audience: Audience, upload: UploadSession, now: float) -> None:
        assert upload.members is not None
        audience.members = upload.members
        upload.members = None
        upload.finished = True
        audience.replace = None
        audience.operation_status = 200
        audience.time_content_updated = int(now)

    def _apply(
        self, audience: Audience, op: str, upload: UploadSession | None, records: Iterable[tuple[Any, ...]]
    ) -> int:
        counters = audience.counters
        if op == "add":
            rows, matched = audience.members.add_many(records)
            counters["adds_matched"] += matched
            counters["adds_new"] += rows - matched
        elif op == "remove":
            rows, matched, removed = audience.members.remove_many(records)
            counters["removes_matched"] += matched
            counters["removes_unmatched"] += rows - matched
            counters["removed_members"] += removed
        else:
            assert upload is not None and upload.members is not None
            rows, _ = upload.members.add_many(records)
            counters["replace_rows"] += rows
        return rows
