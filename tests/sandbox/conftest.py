"""Fixtures of the sandbox tests: ``graph``, raw Graph calls to the audience endpoints."""

from __future__ import annotations

import pytest
from _audience_graph import Graph

from metabridge.sandbox.control import SandboxControl


@pytest.fixture
def graph(sandbox: SandboxControl) -> Graph:
    """Graph calls on the per-test sandbox."""
    return Graph(sandbox)
