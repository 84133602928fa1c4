"""The typed client of the API, kept importable here: it is ``latm_client`` (clients/python).

``from orchestrator.client import Client`` and ``from latm_client import Client`` give the
same class; new code imports ``latm_client``.
"""

from __future__ import annotations

from latm_client import GRANULARITY, Answer, AsyncClient, Client, TlsFiles, ToolResult

__all__ = ["GRANULARITY", "Answer", "AsyncClient", "Client", "TlsFiles", "ToolResult"]
