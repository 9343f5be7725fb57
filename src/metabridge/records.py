"""Read records (events, products, audience members) from JSON, NDJSON and CSV files.

Shared by every ``import`` / ``preview`` command. Records stream one at a time, so a file larger than
memory can be read; a record that cannot be read is reported at its index instead of stopping the file.

CSV columns use dotted names for nesting (``user.email``, ``properties.value``); an empty cell means "not
given"; a cell holding a JSON array or object (``[{"id": "sku-1"}]``) is read as that JSON.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson

Format = Literal["json", "ndjson", "csv"]

_FORMAT_BY_SUFFIX: dict[str, Format] = {
    ".json": "json",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".csv": "csv",
}


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A record the file holds but that is not readable as JSON / CSV (with why)."""

    message: str


Record = dict[str, Any] | UnreadableRecord


class RecordFileError(ValueError):
    """The file as a whole cannot be read (unknown format, not JSON at all...)."""


def detect_format(path: str, head: bytes) -> Format:
    """By the file's suffix, else by its first non-blank byte (``[``/``{`` JSON-ish, else CSV)."""
    suffix = Path(path).suffix.lower()
    if suffix in _FORMAT_BY_SUFFIX:
        return _FORMAT_BY_SUFFIX[suffix]
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        first_line = stripped.split(b"\n", 1)[0].strip()
        try:
            orjson.loads(first_line)
            return "ndjson"
        except orjson.JSONDecodeError:
            return "json"
    return "csv"


def read_records(path: str, fmt: Format | None = None, *, list_key: str = "events") -> Iterator[Record]:
    """Every record of ``path`` (``-`` for standard input), in file order."""
    if path == "-":
        data = sys.stdin.buffer.read()
        yield from parse_records(data, fmt or detect_format("-", data[:4096]), list_key=list_key)
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, streams large files
    except OSError as exc:
        raise RecordFileError(f"cannot open {path}: {exc.strerror}") from None
    with handle:
        head = handle.read(4096)
        handle.seek(0)
        chosen = fmt or detect_format(path, head)
        if chosen == "json":
            yield from parse_records(handle.read(), "json", list_key=list_key)
        elif chosen == "ndjson":
            yield from _ndjson_lines(handle)
        else:
            yield from _csv_rows(io.TextIOWrapper(handle, encoding="utf-8-sig", newline=""))


def parse_records(data: bytes, fmt: Format, *, list_key: str = "events") -> Iterator[Record]:
    """Records of an in-memory document (an HTTP body, standard input)."""
    if fmt == "ndjson":
        yield from _ndjson_lines(io.BytesIO(data))
    elif fmt == "csv":
        yield from _csv_rows(io.StringIO(data.decode("utf-8-sig")))
    else:
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise RecordFileError(f"not valid JSON: {exc}") from None
        if isinstance(document, dict) and isinstance(document.get(list_key), list):
            document = document[list_key]
        if isinstance(document, dict):
            yield document
        elif isinstance(document, list):
            for item in document:
                yield item if isinstance(item, dict) else UnreadableRecord("must be a JSON object")
        else:
            raise RecordFileError(f"expected a JSON object, an array or {{\"{list_key}\": [...]}}")


def _ndjson_lines(handle: IO[bytes]) -> Iterator[Record]:
    for line in handle:
        line = line.strip()
        if not line:
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield UnreadableRecord(f"line is not valid JSON: {exc}")
            continue
        yield item if isinstance(item, dict) else UnreadableRecord("must be a JSON object")


def _cell(text: str) -> Any:
    if text[:1] in ("[", "{"):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
    return text


def _csv_rows(text: IO[str]) -> Iterator[Record]:
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    paths = [column.strip().split(".") for column in header]
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        record: dict[str, Any] = {}
        for path, cell in zip(paths, row):
            cell = cell.strip()
            if not cell or not path[0]:
                continue
            target = record
            for part in path[:-1]:
                target = target.setdefault(part, {})
                if not isinstance(target, dict):
                    break
            else:
                target[path[-1]] = _cell(cell)
        yield record
