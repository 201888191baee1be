"""Replay a Synthea patient's vital signs into a running monitor at a speed-up (for demos)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from medagent.monitor.config import MonitorConfig, default_config
from medagent.monitor.errors import MonitorError
from medagent.monitor.readings import naive_utc
from medagent.monitor.synthea import iter_bundles, monitored_observations, patient_id


@dataclass(frozen=True, slots=True)
class ReplayStats:
    """What a replay sent."""

    patient_id: str
    posts: int
    observations: int
    accepted: int
    alerts: int
    seconds: float


def find_patient(data: Path, wanted: str) -> dict[str, Any]:
    """The bundle whose patient id, file name or name prefix matches ``wanted``."""
    needle = wanted.lower()
    for name, bundle in iter_bundles(data):
        if needle in (patient_id(bundle).lower(), name.lower()) or name.lower().startswith(needle):
            return bundle
    raise MonitorError(f"no Synthea patient {wanted!r} in {data}")


def _effective(resource: dict[str, Any]) -> str:
    return str(resource.get("effectiveDateTime") or "")


def batches(
    bundle: dict[str, Any], config: MonitorConfig
) -> Iterator[tuple[float, dict[str, Any]]]:
    """(data time in seconds, Bundle of the Observations taken at that instant), oldest first."""
    from datetime import datetime

    observations = monitored_observations(bundle, config)
    for when, group in groupby(observations, key=_effective):
        t = naive_utc(datetime.fromisoformat(when.replace("Z", "+00:00"))).timestamp()
        entries = [{"resource": r} for r in group]
        yield t, {"resourceType": "Bundle", "type": "collection", "entry": entries}


def replay(
    bundle: dict[str, Any],
    *,
    url: str,
    speed: float = 3600.0,
    max_gap: float = 2.0,
    ward: str | None = "demo",
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    token: str | None = None,
) -> ReplayStats:
    """POST the patient's monitored Observations to ``url`` in time order; the wait between two
    instants is their data-time gap divided by ``speed``, capped at ``max_gap`` seconds. `token`
    is sent as a bearer token (a standalone monitor's token, or a service session)."""
    import httpx

    config = default_config()
    pid = patient_id(bundle)
    base = url.rstrip("/")
    started = time.monotonic()
    posts = observations = accepted = alerts = 0
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(timeout=30, headers=headers) as client:
        if ward is not None:
            client.put(
                f"{base}/monitor/patients/{pid}/placement", json={"ward": ward}
            ).raise_for_status()
        previous: float | None = None
        for t, payload in batches(bundle, config):
            if limit is not None and posts >= limit:
                break
            if previous is not None:
                sleep(min(max_gap, max(0.0, (t - previous) / speed)))
            previous = t
            response = client.post(f"{base}/monitor/fhir", json=payload)
            response.raise_for_status()
            body = response.json()
            posts += 1
            observations += len(payload["entry"])
            accepted += int(body.get("accepted", 0))
            alerts += len(body.get("alerts", ()))
    return ReplayStats(pid, posts, observations, accepted, alerts, time.monotonic() - started)
