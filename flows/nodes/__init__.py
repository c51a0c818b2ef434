"""The built-in node types, one module each (spec + one async handler)."""

from __future__ import annotations

from typing import Any

from flows.nodes import (
    contact_group,
    contact_update,
    data_set,
    flow_delay,
    flow_start,
    flow_stop,
    http_request,
    logic_condition,
    logic_split_random,
    logic_switch,
    sms_reply,
    sms_send,
    sms_wait_for_reply,
    trigger_delivery_status,
    trigger_device_status,
    trigger_http,
    trigger_run_failed,
    trigger_schedule,
    trigger_sms_received,
)
from flows.registry import NodeSpec

__all__ = ["BUILTIN_SPECS"]

BUILTIN_SPECS: tuple[NodeSpec[Any], ...] = (
    trigger_sms_received.SPEC,
    trigger_delivery_status.SPEC,
    trigger_http.SPEC,
    trigger_schedule.SPEC,
    trigger_run_failed.SPEC,
    trigger_device_status.SPEC,
    logic_condition.SPEC,
    logic_switch.SPEC,
    logic_split_random.SPEC,
    data_set.SPEC,
    sms_reply.SPEC,
    sms_send.SPEC,
    sms_wait_for_reply.SPEC,
    http_request.SPEC,
    contact_update.SPEC,
    contact_group.ADD_SPEC,
    contact_group.REMOVE_SPEC,
    flow_delay.SPEC,
    flow_start.SPEC,
    flow_stop.SPEC,
)
