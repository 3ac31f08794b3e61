"""Settings of the HTTP stack shared by every node (and by the benchmark's floor server).

Kept apart from the application so that the floor, which must run the same stack, does not have
to import the node to get them.
"""

from __future__ import annotations

from typing import Any

from fastapi.telemetry import TelemetryConfig

# FastAPI's native OpenTelemetry, off: a node sends nothing about its traffic to a collector, and
# asking on every request whether one is configured cost a seventh of a request's handling.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# uvicorn's options beside the address and the TLS files.
UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "timeout_graceful_shutdown": 5,
    # Stream events are small: compressing them costs CPU per event and subscriber, and
    # compressing a peer's text beside our own under TLS invites length side channels.
    "ws_per_message_deflate": False,
}
