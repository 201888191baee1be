"""Alerts: one live alert per patient and rule (no storms), acknowledgement, escalation, the live
event hub (server-sent events) and CDS Hooks cards."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

CARD_INDICATOR = {"info": "info", "urgent": "warning", "emergency": "critical"}
SUMMARY_LIMIT = 139  # CDS Hooks: summary shorter than 140 characters


@dataclass(slots=True)
class Alert:
    """An alert and its life: open → acknowledged → resolved (or escalated while open)."""

    id: int
    patient_id: str
    rule: str  # the dedup key within a patient: a scale id or forecast:<signal>
    kind: str  # score | forecast
    severity: str
    level: int  # severity rank x 100 + the rule's place in the declared list: higher is worse
    summary: str
    detail: str
    source_label: str
    source_url: str | None
    scale_id: str | None
    scale_version: str | None
    message_id: str | None
    status: str
    count: int
    opened_at: datetime
    last_seen: datetime
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    escalated_at: datetime | None = None
    resolved_at: datetime | None = None

    @property
    def live(self) -> bool:
        """Open or acknowledged (not yet resolved)."""
        return self.status != "resolved"

    @property
    def open_key(self) -> str | None:
        """The unique key a live alert holds in the table."""
        return f"{self.patient_id}|{self.rule}" if self.live else None

    def row(self) -> dict[str, Any]:
        """Column values for the alert table."""
        out = asdict(self)
        out["open_key"] = self.open_key
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, datetime):
                out[key] = value.isoformat()
        return out

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Alert:
        """An alert from a table row."""
        fields = {k: row[k] for k in cls.__dataclass_fields__}
        return cls(**fields)


def truncate(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def card(alert: Alert, *, link: str | None = None) -> dict[str, Any]:
    """The alert as a CDS Hooks 2.0 card (summary < 140 characters, indicator, source)."""
    source: dict[str, Any] = {"label": alert.source_label}
    if alert.source_url:
        source["url"] = alert.source_url
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"medagent-monitor-alert/{alert.id}")),
        "summary": truncate(alert.summary),
        "indicator": CARD_INDICATOR[alert.severity],
        "detail": alert.detail,
        "source": source,
    }
    if link:
        out["links"] = [{"label": "Patient monitor", "url": link, "type": "absolute"}]
    return out


class EventHub:
    """Fan-out of monitor events to live subscribers (each an asyncio queue on its own loop);
    publishing from any thread is safe and costs nothing without subscribers."""

    def __init__(self, *, queue_size: int = 1000) -> None:
        self._subs: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = []
        self._lock = threading.Lock()
        self.queue_size = queue_size

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue receiving every event from now on (call inside the subscriber's loop)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        with self._lock:
            self._subs.append((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``queue``."""
        with self._lock:
            self._subs = [(lp, q) for lp, q in self._subs if q is not queue]

    @property
    def active(self) -> bool:
        """Whether anyone listens."""
        return bool(self._subs)

    def publish(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` to every subscriber (a full queue drops the event for that one)."""
        with self._lock:
            subs = list(self._subs)
        for loop, queue in subs:

            def put(q: asyncio.Queue[dict[str, Any]] = queue) -> None:
                if not q.full():
                    q.put_nowait(event)

            try:
                loop.call_soon_threadsafe(put)
            except RuntimeError:  # the subscriber's loop is closed
                self.unsubscribe(queue)
