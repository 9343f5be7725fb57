"""Keep access tokens out of messages, reprs and logs.

Graph takes the token as the ``access_token`` query parameter, so every URL the client builds holds a
secret. Anything that may be logged or raised goes through :func:`redact_url` first; text copied from a
response (error messages, bodies) goes through :func:`scrub` with the token in hand.

Also installs :class:`RedactingFilter` on the ``httpx`` logger (it logs each request URL at INFO), so
turning on httpx logging cannot leak a token either.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_PARAMS",
    "RedactingFilter",
    "install_httpx_log_filter",
    "redact_text",
    "redact_url",
    "scrub",
]

REDACTED = "***"

#: Query/form parameter names whose values are secrets (tokens, proofs, client secrets).
SECRET_PARAMS: frozenset[str] = frozenset(
    {
        "access_token",
        "appsecret_proof",
        "client_secret",
        "fb_exchange_token",
        "input_token",
        "code",
        "refresh_token",
    }
)

# In free text only the unambiguous names are matched ("code=" would hit ordinary prose).
_SECRET_IN_TEXT = re.compile(
    r"(?P<key>\b(?:" + "|".join(sorted(SECRET_PARAMS - {"code"})) + r")=)(?P<value>[^&\s\"'#]+)",
    re.IGNORECASE,
)


def redact_url(url: Any) -> str:
    """``url`` as a string with the values of secret query parameters replaced by ``***``.

    Accepts ``str`` or ``httpx.URL``. Userinfo (``user:password@``) is dropped as well. Never raises:
    a URL it cannot parse is redacted textually.
    """
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return redact_text(text)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode(
        [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in pairs],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Replace ``access_token=…``-style pairs anywhere in free text (log lines, exception strings)."""
    return _SECRET_IN_TEXT.sub(lambda m: m.group("key") + REDACTED, text)


def scrub(value: Any, secrets: Iterable[str | None]) -> Any:
    """A copy of ``value`` (str, or nested dict/list of them) with every secret string replaced.

    Used on error bodies before they are attached to an exception: Meta sometimes quotes the
    offending parameter back, and a token must never ride along in an exception.
    """
    needles = [s for s in secrets if s]
    if not needles:
        return value
    return _scrub(value, needles)


def _scrub(value: Any, needles: list[str]) -> Any:
    if isinstance(value, str):
        for needle in needles:
            if needle in value:
                value = value.replace(needle, REDACTED)
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v, needles) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, needles) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites log records so that URL arguments and messages carry no secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(self._clean(a) for a in args)
        if isinstance(record.msg, str) and "=" in record.msg:
            record.msg = redact_text(record.msg)
        return True

    @staticmethod
    def _clean(arg: Any) -> Any:
        if isinstance(arg, (str, bytes, int, float)) or arg is None:
            return redact_text(arg) if isinstance(arg, str) else arg
        text = str(arg)
        if "=" in text:  # httpx.URL and friends
            return redact_url(text)
        return arg


_installed = False


def install_httpx_log_filter() -> None:
    """Attach :class:`RedactingFilter` to the ``httpx`` logger once (idempotent)."""
    global _installed
    if _installed:
        return
    logging.getLogger("httpx").addFilter(RedactingFilter())
    _installed = True
