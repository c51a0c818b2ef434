"""What runs: every job by name, the periodic jobs, and the event sinks in order.

Nothing registers itself: a job function exists for the queue only when it is listed
here (a row naming anything else is never run), and the sinks are handed every public
event in the order written here. Follow an event by reading this file:

1. ``hub.services.ingress`` verifies and parses a gateway webhook; ``hub.services.ingest``
   writes its events in one group-committed transaction, delivery reports through
   ``hub.services.reports``, STOP / START / HELP through ``hub.services.optouts``;
2. in that transaction, the SINKS see the new events: flows first (a ``flow_dispatch``
   job only for what a trigger or a waiting run wants), then webhook endpoints (a
   delivery and its ``deliver_webhook`` job per subscribed endpoint);
3. the JOBS carry the work on: runs through the flow engine, SMS handed to gateways,
   webhook attempts, and the events those raise (``dispatch_event``), which come back to
   step 2.
"""

from __future__ import annotations

from hub.context import Wiring
from hub.delivery import jobs as delivery
from hub.services import (
    broadcasts,
    broadcasts_jobs,
    campaigns_jobs,
    campaigns_schedule,
    concat,
    devices,
    events,
    flow_dispatch,
    flow_schedules,
    followups,
    handover,
    reports,
    retention,
)


def default_wiring() -> Wiring:
    """The jobs, periodic jobs and sinks of a hub process."""
    return Wiring(
        jobs={
            events.DISPATCH_EVENT: events.dispatch_event,
            flow_dispatch.FLOW_DISPATCH: flow_dispatch.flow_dispatch,
            flow_dispatch.FLOW_TIMER: flow_dispatch.flow_timer,
            flow_dispatch.FLOW_ADVANCE: flow_dispatch.flow_advance,
            flow_dispatch.FLOW_CANCEL_WAITING: flow_dispatch.flow_cancel_waiting,
            flow_dispatch.FLOW_SWEEP: flow_dispatch.flow_sweep,
            flow_schedules.SCHEDULE_TICK: flow_schedules.schedule_tick,
            flow_schedules.SCHEDULE_ENSURE: flow_schedules.schedule_ensure,
            handover.SEND_MESSAGE: handover.send_message,
            reports.MATCH_REPORT: reports.match_report,
            followups.INGEST_FOLLOWUP: followups.ingest_followup,
            concat.CONCAT_RELEASE: concat.concat_release,
            delivery.DELIVER_JOB: delivery.deliver_webhook,
            retention.RETENTION_PRUNE: retention.retention_prune,
            broadcasts.BROADCAST_START: broadcasts_jobs.broadcast_start,
            broadcasts_jobs.BROADCAST_BATCH: broadcasts_jobs.broadcast_batch,
            broadcasts_jobs.BROADCAST_FINISH: broadcasts_jobs.broadcast_finish,
            campaigns_schedule.CAMPAIGN_FIRE: campaigns_jobs.campaign_fire,
            devices.DEVICE_WATCH: devices.device_watch,
        },
        periodic={
            flow_dispatch.FLOW_SWEEP: 60.0,
            flow_schedules.SCHEDULE_ENSURE: flow_schedules.ENSURE_S,
            retention.RETENTION_PRUNE: retention.PRUNE_INTERVAL_S,
            devices.DEVICE_WATCH: devices.WATCH_INTERVAL_S,
        },
        sinks=(flow_dispatch.flows_sink, delivery.fan_out),
    )
