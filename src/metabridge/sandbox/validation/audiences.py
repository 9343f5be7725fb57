"""Custom Audience request validation, as Meta documents it (audiences-and-catalog.md §1-§2).

Like ``validation/events.py`` this module shares nothing with the code under test (``metabridge.audiences``,
``metabridge.identity``): the rules are tables below and the functions only walk them.

Rows and members
    A valid row of ``payload.data`` becomes a *member record*: the tuple ``(shape, v1, v2, ...)`` where
    ``shape`` is the tuple of schema keys whose cells are non-empty, in schema order, and ``v1...`` are
    those cells. Single-key schemas store their multi-key name (``EMAIL_SHA256`` -> ``EMAIL``,
    ``PHONE_SHA256`` -> ``PHONE``, ``MOBILE_ADVERTISER_ID`` -> ``MADID``), so a member added with one
    schema style can be removed with the other. Tuples, not dicts: a benchmark keeps a million of them.

Per-row rules (an invalid row is counted in ``num_invalid_entries`` and sampled in
``invalid_entry_samples`` as ``{compact JSON of the row as sent: reason}``; it does not fail the request):

- a multi-key row must be an array of exactly ``len(schema)`` cells; a single-key row is a string or a
  one-element array;
- hashed keys (:data:`HASHED_KEYS`) must be lowercase SHA-256 hex; plaintext, uppercase hex and
  sha256("") are invalid (Meta: unknown cells are ``""``, never the hash of ``""``);
- ``EXTERN_ID`` in the schema and ``""`` in the row: ``"empty external ID"`` (Meta's recorded reason);
- ``MADID`` must be lowercase and unhashed (a 64-hex value is taken for a hash);
- a row with no non-empty identity cell is invalid;
- ``LOOKALIKE_VALUE`` is a number >= 0 (or a numeric string), required on adds to value-based audiences;
- ``DATA_PROCESSING_OPTIONS`` is ``[]`` or ``["LDU"]``; ``..._COUNTRY`` 0 or 1; ``..._STATE`` 0 or 1000-1013.

Request-level rules (code 100, nothing stored): ``payload`` missing or not a JSON object, an unknown or
duplicated schema key, a schema without an identity key, ``data`` not a non-empty array (so a replace
cannot empty an audience: Meta documents no way to), more than 10,000 rows, a malformed ``session``;
LOOKALIKE_VALUE on a non-value-based audience, or missing on adds/replaces of a value-based one.

Decisions where Meta is silent or where the sandbox is stricter, marked **[sandbox]** where they live:

- ``subtype`` is required on create and only CUSTOM is simulated;
- audience size: fewer than :data:`SMALL_AUDIENCE_THRESHOLD` members -> bounds ``-1`` and
  delivery_status 300; otherwise the count cut to two significant digits (:func:`approximate_bounds`);
  every valid row counts as matched, immediately (Meta matches asynchronously, up to 24 h);
- ``num_received`` counts the session's rows so far; ``num_invalid_entries`` and
  ``invalid_entry_samples`` are this request's; ``session_id`` is answered as a string (as recorded);
- ``usersreplace`` answers ``audience_id`` like ``/users`` (the doc's ``account_id`` looks like a typo);
- the 500-audience limit answers 2654 (the code is not documented), a schema change inside a replace
  session 100, a replace batch 1 resent while its session runs 2650/1870145;
- the Custom Audience Terms gate create, ``/users`` and ``/usersreplace``; reads, updates and deletes
  work without them;
- an audience keeps the data source of its first upload (single-key ``HASHES_OR_USER_IDS`` or multi-key
  ``MULTI_HASHES``; facebook-python-business-sdk#433): adds and replaces in the other style are 2650,
  removals may use either.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from itertools import chain, compress
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

from metabridge.sandbox.errors import GraphAPIException, graph_error

__all__ = [
    "AUDIENCE_FIELDS",
    "CUSTOMER_FILE_SOURCES",
    "DEFAULT_PAGE_LIMIT",
    "HASHED_KEYS",
    "IDENTITY_KEYS",
    "MATCH_KEYS",
    "MAX_CUSTOMER_FILE_AUDIENCES",
    "MAX_INVALID_SAMPLES",
    "MAX_ROWS_PER_REQUEST",
    "MULTI_KEY_SCHEMA",
    "OPERATION_STATUS",
    "SESSION_WINDOW_SECONDS",
    "SINGLE_KEY_SCHEMAS",
    "SMALL_AUDIENCE_THRESHOLD",
    "STORE_ERRORS",
    "SUBTYPES",
    "UNSERVED_FIELDS",
    "Cell",
    "CreateSpec",
    "RowsResult",
    "Schema",
    "SessionSpec",
    "approximate_bounds",
    "check_value_column",
    "decode_cursor",
    "delivery_status",
    "encode_cursor",
    "param_error",
    "parse_bool",
    "parse_create",
    "parse_fields",
    "parse_limit",
    "parse_payload",
    "parse_session",
    "parse_update",
    "store_error",
    "validate_rows",
]

# -- limits (§1.1, §2.1, §2.5) ----------------------------------------------------------------------------
MAX_ROWS_PER_REQUEST = 10_000
MAX_CUSTOMER_FILE_AUDIENCES = 500
MAX_INVALID_SAMPLES = 100
#: A session without a final batch closes 90 minutes after its first batch (§2.4, §2.5).
SESSION_WINDOW_SECONDS = 90 * 60
#: [sandbox] Below this many members the size is hidden (bounds -1) and delivery_status is 300
#: "too small" (§1.3, §2.7: small audiences show size -1 and delivery_status 300).
SMALL_AUDIENCE_THRESHOLD = 1_000
#: Page size of ``GET /act_{id}/customaudiences`` without ``limit`` (Graph's default edge page size).
DEFAULT_PAGE_LIMIT = 25

CUSTOMER_FILE_SOURCES: frozenset[str] = frozenset(
    {"USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY", "BOTH_USER_AND_PARTNER_PROVIDED"}
)
#: Meta's ``subtype`` enum [SDK customaudience.py]. Only CUSTOM (customer list) is simulated.
SUBTYPES: frozenset[str] = frozenset(
    {"APP", "BAG_OF_ACCOUNTS", "BIDDING", "CLAIM", "CUSTOM", "ENGAGEMENT", "EXCLUSION", "FOX", "LOOKALIKE",
     "MANAGED", "MEASUREMENT", "OFFLINE_CONVERSION", "PARTNER", "PRIMARY", "REGULATED_CATEGORIES_AUDIENCE",
     "STUDY_RULE_AUDIENCE", "SUBSCRIBER_SEGMENT", "VIDEO", "WEBSITE"}
)  # fmt: skip
SIMULATED_SUBTYPES: frozenset[str] = frozenset({"CUSTOM"})


class Cell(Enum):
    """How a schema key's cells are checked."""

    HASHED = "hashed"
    EXTERN_ID = "extern_id"
    MADID = "madid"
    LOOKALIKE_VALUE = "lookalike_value"
    DPO = "dpo"
    DPO_COUNTRY = "dpo_country"
    DPO_STATE = "dpo_state"


#: Multi-key schema keys (§2.2, §2.3, §2.6). PAGEUID/APPUID/UID need page or app ids: not simulated.
MULTI_KEY_SCHEMA: Mapping[str, Cell] = {
    "EXTERN_ID": Cell.EXTERN_ID,
    "EMAIL": Cell.HASHED,
    "PHONE": Cell.HASHED,
    "GEN": Cell.HASHED,
    "DOBY": Cell.HASHED,
    "DOBM": Cell.HASHED,
    "DOBD": Cell.HASHED,
    "LN": Cell.HASHED,
    "FN": Cell.HASHED,
    "FI": Cell.HASHED,
    "CT": Cell.HASHED,
    "ST": Cell.HASHED,
    "ZIP": Cell.HASHED,
    "MADID": Cell.MADID,
    "COUNTRY": Cell.HASHED,
    "LOOKALIKE_VALUE": Cell.LOOKALIKE_VALUE,
    "DATA_PROCESSING_OPTIONS": Cell.DPO,
    "DATA_PROCESSING_OPTIONS_COUNTRY": Cell.DPO_COUNTRY,
    "DATA_PROCESSING_OPTIONS_STATE": Cell.DPO_STATE,
}

#: Single-key ``schema`` strings -> the multi-key name members are stored under (§2.2).
SINGLE_KEY_SCHEMAS: Mapping[str, str] = {
    "EMAIL_SHA256": "EMAIL",
    "PHONE_SHA256": "PHONE",
    "MOBILE_ADVERTISER_ID": "MADID",
    "EXTERN_ID": "EXTERN_ID",
}

HASHED_KEYS: frozenset[str] = frozenset(k for k, c in MULTI_KEY_SCHEMA.items() if c is Cell.HASHED)
#: Keys that say who a person is; LOOKALIKE_VALUE and the DPO columns are attributes of the row.
IDENTITY_KEYS: frozenset[str] = frozenset(
    k for k, c in MULTI_KEY_SCHEMA.items() if c in (Cell.HASHED, Cell.EXTERN_ID, Cell.MADID)
)
#: Member matching precedence (see audience_state): the first of these both rows have decides.
MATCH_KEYS: tuple[str, ...] = ("EXTERN_ID", "EMAIL", "PHONE", "MADID")

LDU_COUNTRIES: frozenset[int] = frozenset({0, 1})
LDU_STATES: frozenset[int] = frozenset({0, *range(1000, 1014)})

#: Why a row is invalid (the values of ``invalid_entry_samples``). ``{key}`` is the schema key.
ROW_REASONS: Mapping[str, str] = {
    "row_length": "row must be an array of {n} cells, one per schema key",
    "single_row": "row must be a string or an array of one string",
    "empty_extern_id": "empty external ID",  # Meta's recorded text [GRP fixture]
    "empty_row": "every identity cell is empty",
    "not_string": "{key} must be a string",
    "unhashed": "{key} is not hashed: normalize it and send the lowercase SHA-256 hex digest",
    "uppercase_hash": "{key} is uppercase hex: send the lowercase SHA-256 hex digest",
    "empty_hash": '{key} is the SHA-256 of an empty string: send "" for an unknown value',
    "madid_hashed": "MADID must not be hashed: send the advertising id itself",
    "madid_case": "MADID must be lowercase",
    "lookalike_value": "LOOKALIKE_VALUE must be a number >= 0",
    "lookalike_missing": "LOOKALIKE_VALUE is required for a value-based audience",
    "dpo": 'DATA_PROCESSING_OPTIONS must be [] or ["LDU"]',
    "dpo_country": "DATA_PROCESSING_OPTIONS_COUNTRY must be 0 or 1",
    "dpo_state": "DATA_PROCESSING_OPTIONS_STATE must be 0 or a state code 1000-1013",
}

_SHA256 = re.compile(r"[0-9a-f]{64}").fullmatch
_HEX_BYTES = b"0123456789abcdef"
_HEX64_ANY_CASE = re.compile(r"[0-9a-fA-F]{64}").fullmatch
_NUMBER = re.compile(r"\d+(?:\.\d+)?").fullmatch
_DIGITS = re.compile(r"\d+").fullmatch
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

# -- operation and delivery status (§1.3) -----------------------------------------------------------------
#: ``operation_status`` codes the sandbox uses, with Meta's meaning as the description.
OPERATION_STATUS: Mapping[int, str] = {
    200: "Normal",
    410: "No upload: this audience has no uploaded customer data yet",
    414: "Replace in progress: the audience is being replaced",
    415: "Replace failed: the replace session closed before its last batch; the audience holds what was "
    "uploaded in the session",
}

DELIVERY_READY = {"code": 200, "description": "This audience is ready for use."}
DELIVERY_TOO_SMALL = {
    "code": 300,
    "description": "This audience is too small to be used for ads delivery. Add more people to it.",
}


def approximate_bounds(count: int) -> tuple[int, int]:
    """Deterministic size range: ``-1`` below the threshold, else ``count`` cut to two significant digits.

    ``lower <= count < upper``: 12,345 -> (12,000, 13,000); 1,000 -> (1,000, 1,100). [sandbox] Meta's
    range comes from matching and is not documented; this one only depends on the member count.
    """
    if count < SMALL_AUDIENCE_THRESHOLD:
        return -1, -1
    unit = 10 ** (len(str(count)) - 2)
    lower = count // unit * unit
    return lower, lower + unit


def delivery_status(count: int) -> dict[str, Any]:
    return dict(DELIVERY_READY if count >= SMALL_AUDIENCE_THRESHOLD else DELIVERY_TOO_SMALL)


# -- fields (§1.3) ----------------------------------------------------------------------------------------
#: Fields the sandbox serves on ``GET /{audience_id}`` and in listings.
AUDIENCE_FIELDS: frozenset[str] = frozenset(
    {"id", "account_id", "name", "description", "subtype", "customer_file_source",
     "approximate_count_lower_bound", "approximate_count_upper_bound", "time_created", "time_updated",
     "time_content_updated", "operation_status", "delivery_status", "data_source", "is_value_based"}
)  # fmt: skip
#: Real CustomAudience fields a customer list has no value for: accepted in ``fields`` and left out of
#: the answer (Graph omits unset fields). Anything else is "nonexisting field", code 100.
UNSERVED_FIELDS: frozenset[str] = frozenset(
    {"retention_days", "rule", "rule_aggregation", "pixel_id", "external_event_source", "lookalike_spec",
     "lookalike_audience_ids", "sharing_status", "permission_for_actions", "opt_out_link",
     "excluded_custom_audiences", "included_custom_audiences", "is_household", "is_snapshot",
     "page_deletion_marked_delete_time", "fields_violating_integrity_policy", "household_audience",
     "owner_business", "seed_audience", "sub_type", "audience_labels"}
)  # fmt: skip


# -- errors -----------------------------------------------------------------------------------------------
def param_error(
    field: str, user_title: str, user_msg: str, message: str | None = None, *, subcode: int | None = None
) -> GraphAPIException:
    """A code-100 rejection naming the parameter; ``error_data.field`` is its dotted path."""
    return graph_error(
        100,
        subcode,
        message if message is not None else f"(#100) {user_msg}",
        user_title=user_title,
        user_msg=user_msg,
        error_data={"field": field},
        is_transient=False,
    )


class StoreErrorSpec(NamedTuple):
    code: int
    subcode: int | None
    message: str
    user_title: str
    user_msg: str


#: What the audience store's refusals look like on the wire (§1.2, §2.5, §2.8). Keys are
#: ``AudienceError.kind``; ``{...}`` are filled from the error's details.
STORE_ERRORS: Mapping[str, StoreErrorSpec] = {
    "tos_not_accepted": StoreErrorSpec(
        200, 1870090,
        "(#200) Custom Audience Terms Not Accepted: you need to accept the Custom Audience Terms before "
        "you can create or edit an audience. Accept them at "
        "https://www.facebook.com/customaudiences/app/tos/?act={ad_account_id}",
        "Custom Audience Terms Not Accepted",
        "The Custom Audience Terms have not been accepted for ad account {ad_account_id}. Accept them for "
        "the business the ad account acts on behalf of, then retry with a fresh token.",
    ),
    # [sandbox] Meta documents the 500 limit (§1.1) but not the error; 2654 is Graph's "failed to create".
    "audience_limit": StoreErrorSpec(
        2654, None,
        "(#2654) Failed to create custom audience: the ad account already has the maximum of {limit} "
        "customer file custom audiences",
        "Too Many Custom Audiences",
        "Ad account {ad_account_id} has {limit} customer file audiences; delete unused ones first.",
    ),
    "replace_in_progress": StoreErrorSpec(
        2650, 1870145,
        "(#2650) Failed to update the custom audience: an update (replace) is already in progress for "
        "this audience",
        "Audience Update In Progress",
        "A replace session is running on this audience; wait until it finishes before another replace or "
        "a /users call.",
    ),
    "session_timed_out": StoreErrorSpec(
        2650, 1870158,
        "(#2650) Failed to update the custom audience: the session has timed out",
        "Session Timed Out",
        "The session started more than 90 minutes ago; its later batches are rejected. Add the rest "
        "with /users once the audience is ready.",
    ),
    "first_batch_missing": StoreErrorSpec(
        2650, 1870147,
        "(#2650) Failed to update the custom audience: the first batch of the session (batch_seq 1) is "
        "missing",
        "Missing First Batch",
        "A replace session must start with batch_seq 1.",
    ),
    "session_finished": StoreErrorSpec(
        2650, 1870159,
        "(#2650) Failed to update the custom audience: the session has already finished",
        "Session Already Finished",
        "This session's last batch (last_batch_flag) was already received; add more people via /users.",
    ),
    # [sandbox] §2.5 says the schema must stay the same; the error is not documented.
    "schema_changed": StoreErrorSpec(
        100, None,
        "(#100) The schema must stay the same across a replace session",
        "Schema Changed In Session",
        "This session started with schema {expected}; this batch has {got}.",
    ),
    # facebook-python-business-sdk#433: an audience keeps the data source of its first upload.
    "data_source_mismatch": StoreErrorSpec(
        2650, None,
        "(#2650) Failed to update the custom audience: This audience was created from data source "
        "FILE_IMPORTED.{expected}, which does not support data source FILE_IMPORTED.{got}.",
        "Data Source Mismatch",
        "Upload with the same schema style (single-key or multi-key) as the audience's first upload.",
    ),
}


def store_error(kind: str, details: Mapping[str, Any]) -> GraphAPIException:
    """The Graph error for an audience-store refusal ``kind``."""
    spec = STORE_ERRORS[kind]
    return graph_error(
        spec.code,
        spec.subcode,
        spec.message.format(**details),
        user_title=spec.user_title,
        user_msg=spec.user_msg.format(**details),
        is_transient=False,
    )


# -- scalar params ----------------------------------------------------------------------------------------
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def parse_bool(value: Any, field: str, default: bool = False) -> bool:
    """Graph booleans: JSON true/false, or "true"/"false"/"1"/"0" in forms and query strings."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise param_error(field, "Invalid Parameter", f"Param {field} must be a boolean.")


def _parse_int(value: Any, field: str, *, minimum: int, maximum: int | None = None) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS(value.strip()):
        number = int(value.strip())
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bound = f" between {minimum} and {maximum}" if maximum is not None else f" >= {minimum}"
        raise param_error(field, "Invalid Parameter", f"Param {field} must be an integer{bound}.")
    return number


def parse_limit(value: Any) -> int:
    """``limit`` of an edge read: a positive integer, :data:`DEFAULT_PAGE_LIMIT` when absent."""
    if value is None or value == "":
        return DEFAULT_PAGE_LIMIT
    return _parse_int(value, "limit", minimum=1)


def encode_cursor(audience_id: str) -> str:
    """Opaque paging cursor for an audience (Meta's cursors are base64 too)."""
    return base64.urlsafe_b64encode(f"customaudience:{audience_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: Any, field: str) -> int:
    """The audience id a cursor points at; a cursor the sandbox did not make is code 100."""
    if isinstance(cursor, str) and cursor:
        try:
            text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            text = ""
        prefix, _, audience_id = text.partition(":")
        if prefix == "customaudience" and _DIGITS(audience_id):
            return int(audience_id)
    raise param_error(field, "Invalid Cursor", f"Param {field} is not a valid paging cursor.")


def parse_fields(value: Any) -> list[str]:
    """``fields=a,b{x,y},c`` -> ``["a", "b", "c"]`` (sub-field selections return the whole object).

    No ``fields``: only ``id``, as Graph does. An unknown field is code 100 as on Graph.
    """
    if value is None or value == "":
        return ["id"]
    if not isinstance(value, str):
        raise param_error("fields", "Invalid Fields", "Param fields must be a comma-separated string.")
    names: list[str] = []
    depth = 0
    current: list[str] = []
    for char in value + ",":
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and char == ",":
            name = "".join(current).strip()
            current = []
            if name:
                names.append(name)
        elif depth == 0:
            current.append(char)
    for name in names:
        if name not in AUDIENCE_FIELDS and name not in UNSERVED_FIELDS:
            raise param_error(
                "fields",
                "Nonexisting Field",
                f"Tried accessing nonexisting field ({name}) on node type (CustomAudience)",
            )
    return list(dict.fromkeys(names))


# -- create / update (§1.1, §1.4) -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CreateSpec:
    """A validated ``POST /act_{id}/customaudiences``."""

    name: str
    subtype: str
    customer_file_source: str
    description: str | None = None
    is_value_based: bool = False
    enable_fetch_or_create: bool = False


def _required_text(params: Mapping[str, Any], name: str, message: str | None = None) -> str:
    value = params.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise param_error(
            name, "Missing Required Parameter", f"The parameter {name} is required.",
            message or f"(#100) The parameter {name} is required",
        )  # fmt: skip
    if not isinstance(value, str):
        raise param_error(name, "Invalid Parameter", f"Param {name} must be a string.")
    return value.strip()


def _enum(params: Mapping[str, Any], name: str, allowed: frozenset[str], message: str | None = None) -> str:
    value = _required_text(params, name, message)
    if value not in allowed:
        choices = ", ".join(sorted(allowed))
        raise param_error(name, "Invalid Parameter", f"Param {name} must be one of {{{choices}}}")
    return value


def _customer_file_source(params: Mapping[str, Any]) -> str:
    # Meta's recorded text for a missing source (facebook-php-business-sdk#457, since 2018-07-02).
    return _enum(
        params, "customer_file_source", CUSTOMER_FILE_SOURCES,
        "(#100) Missing parameter(s): customer_file_source",
    )  # fmt: skip


def _optional_text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise param_error(name, "Invalid Parameter", f"Param {name} must be a string.")
    return value


def parse_create(params: Mapping[str, Any]) -> CreateSpec:
    """Check a create's parameters; other parameters (``audience_labels``, ``id``...) are ignored.

    [sandbox] ``subtype`` is required (metabridge always sends CUSTOM) and only CUSTOM is simulated.
    """
    name = _required_text(params, "name")
    subtype = _enum(params, "subtype", SUBTYPES)
    if subtype not in SIMULATED_SUBTYPES:
        raise param_error(
            "subtype",
            "Subtype Not Simulated",
            f"[sandbox] subtype {subtype} is a valid Meta subtype but the sandbox only simulates CUSTOM "
            "(customer list) audiences.",
        )
    return CreateSpec(
        name=name,
        subtype=subtype,
        customer_file_source=_customer_file_source(params),
        description=_optional_text(params, "description"),
        is_value_based=parse_bool(params.get("is_value_based"), "is_value_based"),
        enable_fetch_or_create=parse_bool(params.get("enable_fetch_or_create"), "enable_fetch_or_create"),
    )


def parse_update(params: Mapping[str, Any]) -> dict[str, Any]:
    """Changes of ``POST /{audience_id}``: ``name``, ``description``, ``customer_file_source``."""
    changes: dict[str, Any] = {}
    if "name" in params:
        changes["name"] = _required_text(params, "name")
    if "description" in params:
        changes["description"] = _optional_text(params, "description")
    if "customer_file_source" in params:
        changes["customer_file_source"] = _customer_file_source(params)
    return changes


# -- payload and session (§2.1, §2.2, §2.4) ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Schema:
    """A parsed ``payload.schema``.

    ``keys`` are the multi-key names members are stored under; ``signature`` is the schema as sent (a
    replace session must keep it).
    """

    keys: tuple[str, ...]
    cells: tuple[Cell, ...]
    single: bool
    signature: str

    @property
    def data_source(self) -> str:
        """Meta's data source sub-type for this schema style (facebook-python-business-sdk#433)."""
        return "HASHES_OR_USER_IDS" if self.single else "MULTI_HASHES"


@dataclass(frozen=True, slots=True)
class SessionSpec:
    session_id: int
    batch_seq: int | None
    last_batch_flag: bool
    estimated_num_total: int | None


def _json_param(value: Any, field: str) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise param_error(
                field, "Invalid Parameter", f"Param {field} must be a JSON object."
            ) from None
    return value


def _parse_schema(raw: Any) -> Schema:
    if isinstance(raw, str):
        key = SINGLE_KEY_SCHEMAS.get(raw)
        if key is None:
            raise param_error(
                "payload.schema",
                "Invalid Schema",
                f"Schema {raw!r} is not supported: use one of {', '.join(SINGLE_KEY_SCHEMAS)} or an array "
                f"of keys from {', '.join(MULTI_KEY_SCHEMA)}.",
            )
        return Schema((key,), (MULTI_KEY_SCHEMA[key],), True, raw)
    if not isinstance(raw, list) or not raw:
        raise param_error(
            "payload.schema", "Invalid Schema", "Param payload[schema] must be a string or a non-empty array."
        )
    unknown = [k for k in raw if not isinstance(k, str) or k not in MULTI_KEY_SCHEMA]
    if unknown:
        raise param_error(
            "payload.schema",
            "Invalid Schema",
            f"Unknown schema key(s) {', '.join(map(str, unknown))}; multi-key schemas take "
            f"{', '.join(MULTI_KEY_SCHEMA)}.",
        )
    if len(set(raw)) != len(raw):
        raise param_error("payload.schema", "Invalid Schema", "A schema key appears more than once.")
    if not any(k in IDENTITY_KEYS for k in raw):
        raise param_error(
            "payload.schema", "Invalid Schema", "The schema needs at least one key that identifies a person."
        )
    keys = tuple(raw)
    return Schema(keys, tuple(MULTI_KEY_SCHEMA[k] for k in keys), False, ",".join(keys))


def parse_payload(raw: Any) -> tuple[Schema, list[Any]]:
    """``payload`` (a JSON object, or a JSON string in forms and query strings) -> schema and rows.

    Request-level problems are code 100: missing payload, bad schema, ``data`` not a non-empty array,
    more than :data:`MAX_ROWS_PER_REQUEST` rows. ``is_raw``, ``app_ids``, ``data_source``... are accepted
    and not used.
    """
    if raw is None or raw == "":
        raise param_error(
            "payload", "Missing Required Parameter", "The parameter payload is required.",
            "(#100) The parameter payload is required",
        )  # fmt: skip
    payload = _json_param(raw, "payload")
    if not isinstance(payload, dict):
        raise param_error("payload", "Invalid Parameter", "Param payload must be a JSON object.")
    schema = _parse_schema(payload.get("schema"))
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        raise param_error("payload.data", "Invalid Data", "Param payload[data] must be a non-empty array.")
    if len(data) > MAX_ROWS_PER_REQUEST:
        raise param_error(
            "payload.data",
            "Too Many Records",
            f"A request may hold at most {MAX_ROWS_PER_REQUEST} records; this one has {len(data)}.",
        )
    if "is_raw" in payload:
        parse_bool(payload["is_raw"], "payload.is_raw")
    return schema, data


def parse_session(raw: Any, *, required: bool) -> SessionSpec | None:
    """``session`` ``{session_id, batch_seq, last_batch_flag, estimated_num_total}`` (§2.4).

    ``session_id`` is a positive 64-bit integer (a numeric string is accepted). With ``required``
    (usersreplace) the session and its ``batch_seq`` must be there.
    """
    if raw is None or raw == "":
        if required:
            raise param_error(
                "session", "Missing Required Parameter", "The parameter session is required.",
                "(#100) The parameter session is required",
            )  # fmt: skip
        return None
    session = _json_param(raw, "session")
    if not isinstance(session, dict):
        raise param_error("session", "Invalid Parameter", "Param session must be a JSON object.")
    if session.get("session_id") is None:
        raise param_error(
            "session.session_id", "Missing Required Parameter", "session.session_id is required."
        )
    session_id = _parse_int(session["session_id"], "session.session_id", minimum=1, maximum=2**63 - 1)
    batch_seq = session.get("batch_seq")
    if batch_seq is None and required:
        raise param_error("session.batch_seq", "Missing Required Parameter", "session.batch_seq is required.")
    estimated = session.get("estimated_num_total")
    return SessionSpec(
        session_id=session_id,
        batch_seq=None if batch_seq is None else _parse_int(batch_seq, "session.batch_seq", minimum=1),
        last_batch_flag=parse_bool(session.get("last_batch_flag"), "session.last_batch_flag"),
        estimated_num_total=None
        if estimated is None
        else _parse_int(estimated, "session.estimated_num_total", minimum=0),
    )


def check_value_column(schema: Schema, *, value_based: bool, removing: bool) -> None:
    """LOOKALIKE_VALUE only on value-based audiences, and required on their adds and replaces (§1.1, [RS])."""
    has_value = "LOOKALIKE_VALUE" in schema.keys
    if has_value and not value_based:
        raise param_error(
            "payload.schema",
            "Not A Value-Based Audience",
            "LOOKALIKE_VALUE is only accepted by value-based audiences (created with is_value_based=true).",
        )
    if value_based and not removing and not has_value:
        raise param_error(
            "payload.schema",
            "Missing Lookalike Value",
            "A value-based audience needs a LOOKALIKE_VALUE column on adds and replaces.",
        )


# -- rows -------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class RowsResult:
    """Valid rows as member records, and the invalid ones (count and up to 100 samples)."""

    members: list[tuple[Any, ...]]
    invalid: int
    samples: dict[str, str]


def _hash_reason(key: str, value: Any) -> str:
    if not isinstance(value, str):
        return ROW_REASONS["not_string"].format(key=key)
    if value == EMPTY_SHA256:
        return ROW_REASONS["empty_hash"].format(key=key)
    if _HEX64_ANY_CASE(value):
        return ROW_REASONS["uppercase_hash"].format(key=key)
    return ROW_REASONS["unhashed"].format(key=key)


def _extern_reason(key: str, value: Any) -> str | None:
    return None if isinstance(value, str) else ROW_REASONS["not_string"].format(key=key)


def _madid_reason(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return ROW_REASONS["not_string"].format(key=key)
    if _HEX64_ANY_CASE(value):
        return ROW_REASONS["madid_hashed"]
    if value != value.lower():
        return ROW_REASONS["madid_case"]
    return None


def _lookalike_reason(key: str, value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return None
    if isinstance(value, str) and _NUMBER(value):
        return None
    return ROW_REASONS["lookalike_value"]


def _dpo_reason(key: str, value: Any) -> str | None:
    ok = isinstance(value, list) and all(item == "LDU" for item in value) and len(value) <= 1
    return None if ok else ROW_REASONS["dpo"]


def _int_in(allowed: frozenset[int], reason: str) -> Any:
    def check(key: str, value: Any) -> str | None:
        if isinstance(value, str) and _DIGITS(value):
            value = int(value)
        ok = isinstance(value, int) and not isinstance(value, bool) and value in allowed
        return None if ok else ROW_REASONS[reason]

    return check


#: Checker per cell kind: ``(key, non-empty cell) -> reason or None``. Hashed cells have an inline fast
#: path in :func:`validate_rows` and fall back to :func:`_hash_reason` for the reason.
_CELL_CHECKS: Mapping[Cell, Any] = {
    Cell.EXTERN_ID: _extern_reason,
    Cell.MADID: _madid_reason,
    Cell.LOOKALIKE_VALUE: _lookalike_reason,
    Cell.DPO: _dpo_reason,
    Cell.DPO_COUNTRY: _int_in(LDU_COUNTRIES, "dpo_country"),
    Cell.DPO_STATE: _int_in(LDU_STATES, "dpo_state"),
}

_SHAPES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _intern_shape(shape: tuple[str, ...]) -> tuple[str, ...]:
    return _SHAPES.setdefault(shape, shape)


def _sample_key(row: Any) -> str:
    try:
        return orjson.dumps(row).decode()
    except TypeError:
        return repr(row)


def validate_rows(schema: Schema, data: list[Any], *, require_value: bool = False) -> RowsResult:
    """Check every row; valid rows become member records, invalid ones are counted and sampled.

    ``require_value``: an add to a value-based audience, where every row needs a LOOKALIKE_VALUE.
    """
    fast = _fast_single(schema, data) if schema.single else _fast_multi(schema, data, require_value)
    if fast is not None:
        return RowsResult(fast, 0, {})
    members: list[tuple[Any, ...]] = []
    samples: dict[str, str] = {}
    invalid = 0
    if schema.single:
        bad = _validate_single(schema, data, members)
    else:
        bad = _validate_multi(schema, data, members, require_value)
    for row, reason in bad:
        invalid += 1
        if len(samples) < MAX_INVALID_SAMPLES:
            samples.setdefault(_sample_key(row), reason)
    return RowsResult(members, invalid, samples)


def _hashed_column(values: list[Any], *, allow_empty: bool) -> bool:
    """Every value a lowercase SHA-256 hex string other than sha256("") (or "" with ``allow_empty``).

    Checked for the whole list at once: join (TypeError: a non-string), lengths, one translate.
    """
    try:
        joined = "".join(values)
    except TypeError:
        return False
    if not joined.isascii() or not set(map(len, values)) <= ({0, 64} if allow_empty else {64}):
        return False
    return not joined.encode("ascii").translate(None, _HEX_BYTES) and EMPTY_SHA256 not in values


def _fast_single(schema: Schema, data: list[Any]) -> list[tuple[Any, ...]] | None:
    """Whole-request check in C-speed steps for the common case (every row valid); None: check per row."""
    if schema.cells[0] is not Cell.HASHED:
        return None
    values = [r[0] if type(r) is list and len(r) == 1 else r for r in data]
    if not _hashed_column(values, allow_empty=False):
        return None
    shape = _intern_shape(schema.keys)
    return [(shape, v) for v in values]


def _fast_multi(schema: Schema, data: list[Any], require_value: bool) -> list[tuple[Any, ...]] | None:
    """Whole-request check for schemas of hashed keys and EXTERN_ID when every row is valid.

    Cells are checked all at once (see :func:`_hashed_column`); rows are only walked to build member
    records. Anything unusual (another key kind, a bad cell, a row without identity) returns None and the
    caller checks row by row, which finds the reasons.
    """
    cells = schema.cells
    if require_value or any(c is not Cell.HASHED and c is not Cell.EXTERN_ID for c in cells):
        return None
    width = len(cells)
    if set(map(type, data)) != {list} or set(map(len, data)) != {width}:
        return None
    hashed_at = [i for i, c in enumerate(cells) if c is Cell.HASHED]
    if len(hashed_at) == width:
        hashed = list(chain.from_iterable(data))
    elif len(hashed_at) > 1:
        hashed = list(chain.from_iterable(map(itemgetter(*hashed_at), data)))
    else:
        hashed = list(map(itemgetter(hashed_at[0]), data)) if hashed_at else []
    if hashed and not _hashed_column(hashed, allow_empty=True):
        return None
    if "EXTERN_ID" in schema.keys:
        extern = list(map(itemgetter(schema.keys.index("EXTERN_ID")), data))
        if "" in extern or set(map(type, extern)) != {str}:
            return None  # empty or non-string EXTERN_ID
    shape = _intern_shape(schema.keys)
    if "" not in hashed:
        return [(shape, *row) for row in data]
    # Rows with empty cells: their shape depends only on which cells are empty (a handful of patterns).
    keys = schema.keys
    shapes: dict[tuple[bool, ...], tuple[str, ...]] = {}
    records: list[tuple[Any, ...]] = []
    append = records.append
    for row in data:
        if "" not in row:
            append((shape, *row))
            continue
        present = tuple(map(bool, row))  # every cell is a string here
        row_shape = shapes.get(present)
        if row_shape is None:
            if not any(present):
                return None
            row_shape = shapes[present] = _intern_shape(tuple(compress(keys, present)))
        append((row_shape, *compress(row, present)))
    return records


def _validate_single(
    schema: Schema, data: list[Any], members: list[tuple[Any, ...]]
) -> list[tuple[Any, str]]:
    shape = _intern_shape(schema.keys)
    key = schema.keys[0]
    cell = schema.cells[0]
    check = _CELL_CHECKS.get(cell)
    bad: list[tuple[Any, str]] = []
    append = members.append
    for row in data:
        value = row
        if type(row) is list:
            if len(row) != 1:
                bad.append((row, ROW_REASONS["single_row"]))
                continue
            value = row[0]
        if cell is Cell.HASHED:
            if type(value) is str and _SHA256(value) is not None and value != EMPTY_SHA256:
                append((shape, value))
                continue
            if value == "":
                bad.append((row, ROW_REASONS["empty_row"]))
            else:
                bad.append((row, _hash_reason(key, value)))
            continue
        if value == "":
            bad.append((row, ROW_REASONS["empty_extern_id" if cell is Cell.EXTERN_ID else "empty_row"]))
            continue
        reason = check(key, value)
        if reason is None:
            append((shape, value))
        else:
            bad.append((row, reason))
    return bad


def _validate_multi(
    schema: Schema, data: list[Any], members: list[tuple[Any, ...]], require_value: bool
) -> list[tuple[Any, str]]:
    keys = schema.keys
    cells = schema.cells
    width = len(keys)
    full_shape = _intern_shape(keys)
    checks = (_CELL_CHECKS.get(c) for c in cells)
    columns = tuple(zip(keys, cells, checks, (k in IDENTITY_KEYS for k in keys)))
    extern_at = keys.index("EXTERN_ID") if "EXTERN_ID" in keys else -1
    value_at = keys.index("LOOKALIKE_VALUE") if "LOOKALIKE_VALUE" in keys else -1
    hashed = Cell.HASHED
    bad: list[tuple[Any, str]] = []
    append = members.append
    row_length = ROW_REASONS["row_length"].format(n=width)
    for row in data:
        if type(row) is not list or len(row) != width:
            bad.append((row, row_length))
            continue
        if extern_at >= 0 and row[extern_at] == "":
            bad.append((row, ROW_REASONS["empty_extern_id"]))
            continue
        reason = None
        has_identity = False
        empties = False
        for (key, cell, check, identity), value in zip(columns, row):
            if value == "" or value == []:
                empties = True
                continue
            if cell is hashed:
                if type(value) is str and _SHA256(value) is not None and value != EMPTY_SHA256:
                    has_identity = True
                    continue
                reason = _hash_reason(key, value)
                break
            reason = check(key, value)
            if reason is not None:
                break
            if identity:
                has_identity = True
        if reason is None and not has_identity:
            reason = ROW_REASONS["empty_row"]
        if reason is None and require_value and (value_at < 0 or row[value_at] == ""):
            reason = ROW_REASONS["lookalike_missing"]
        if reason is not None:
            bad.append((row, reason))
            continue
        if not empties:
            append((full_shape, *row))
        else:
            kept = [(k, v) for k, v in zip(keys, row) if not (v == "" or v == [])]
            append((_intern_shape(tuple(k for k, _ in kept)), *(v for _, v in kept)))
    return bad
