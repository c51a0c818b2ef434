"""Outbound webhooks: endpoints, signed and retried deliveries, presets and the SSRF guard.

The flow engine's ``http.request`` uses :func:`send_request` (one guarded request, presets
applied, no retries); :func:`check_url` and :func:`shape_body` are the preset helpers.
"""

from hub.delivery.outbound import RequestOutcome, send_request
from hub.delivery.presets import PRESETS, check_url, infer_preset, shape_body
from hub.delivery.ssrf import BlockedDestination, Policy

__all__ = [
    "PRESETS",
    "BlockedDestination",
    "Policy",
    "RequestOutcome",
    "check_url",
    "infer_preset",
    "send_request",
    "shape_body",
]
