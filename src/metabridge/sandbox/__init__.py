"""A faithful local simulation of the Graph API endpoints metabridge uses.

Meta's Graph API is not reachable from development machines and CI, and its test tools give no way to
inject failures. The sandbox answers like Meta (same paths, encodings, validation, error envelope,
HTTP statuses), keeps what it received for inspection, and can be told to fail.

- :func:`create_sandbox_app` builds the FastAPI app; :class:`SandboxState` is its in-memory state.
- :class:`SandboxControl` drives the ``/_sandbox`` control API of a running sandbox over HTTP.
"""

from metabridge.sandbox.app import create_sandbox_app
from metabridge.sandbox.control import SandboxControl
from metabridge.sandbox.state import Fault, FaultError, ReceivedEvent, RequestRecord, SandboxState

__all__ = [
    "Fault",
    "FaultError",
    "ReceivedEvent",
    "RequestRecord",
    "SandboxControl",
    "SandboxState",
    "create_sandbox_app",
]
