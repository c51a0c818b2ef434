"""Documentation that is generated from code stays in step with it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_type_hints

from hub import event_data
from hub.delivery.samples import sample_event

ROOT = Path(__file__).parents[2]


def test_flow_node_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_flow_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    assert block[0].startswith("make run") and block[1].startswith("make test")


def _event_samples() -> list[dict[str, Any]]:
    """Every JSON block of docs/events.md that is a whole event."""
    text = (ROOT / "docs" / "events.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    samples = []
    for block in blocks:
        try:
            value = json.loads(block)
        except json.JSONDecodeError:
            continue  # the envelope's outline with "…"
        if isinstance(value, dict) and "type" in value:
            samples.append(value)
    return samples


#: The TypedDict of each event type's data (hub/event_data.py).
EVENT_DATA = {
    "sms.received": event_data.SmsReceivedData,
    "sms.sent": event_data.SmsStatusData,
    "sms.delivered": event_data.SmsStatusData,
    "sms.failed": event_data.SmsStatusData,
    "flow.run.completed": event_data.FlowRunData,
    "flow.run.failed": event_data.FlowRunData,
    "endpoint.disabled": event_data.EndpointDisabledData,
    "broadcast.started": event_data.BroadcastData,
    "broadcast.completed": event_data.BroadcastData,
    "device.offline": event_data.DeviceStatusData,
    "device.online": event_data.DeviceStatusData,
}
NESTED = {"device": event_data.DeviceRef, "channel": event_data.ChannelRef}


def test_every_event_type_is_documented_with_a_sample_of_its_exact_shape() -> None:
    assert set(EVENT_DATA) == set(event_data.EVENT_TYPES)
    samples = _event_samples()
    assert {s["type"] for s in samples} == set(event_data.EVENT_TYPES)
    for sample in samples:
        assert set(sample) == {"id", "type", "timestamp", "data"}
        shape = EVENT_DATA[sample["type"]]
        assert set(sample["data"]) == set(get_type_hints(shape)), sample["type"]
        for name, ref in NESTED.items():
            if name in sample["data"]:
                assert set(sample["data"][name]) == set(get_type_hints(ref)), name


def test_every_event_field_has_a_line_in_the_reference() -> None:
    text = (ROOT / "docs" / "events.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))
    for shape in {*EVENT_DATA.values()}:
        assert set(get_type_hints(shape)) <= documented, shape.__name__
    for name, ref in NESTED.items():
        assert {f"{name}.{field}" for field in get_type_hints(ref)} <= documented


def test_sample_events_have_the_exact_shape_of_real_ones() -> None:
    """What /endpoints/{id}/test and /hooks/sample send is built like a real event."""
    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    for type_, shape in EVENT_DATA.items():
        data = sample_event(type_, at)["data"]
        assert set(data) == set(get_type_hints(shape)), type_
