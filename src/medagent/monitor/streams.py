"""Fan-out over Redis Streams: a consumer group of worker processes stores and scores readings;
a crashed worker's pending messages are reclaimed with XAUTOCLAIM, and the monitor's message-id
idempotency makes a reclaimed message that was already stored count once."""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from medagent.monitor.core import Monitor, utcnow
from medagent.monitor.readings import Reading

STREAM = "medagent:monitor:readings"
GROUP = "medagent-scorers"


def encode(reading: Reading, received: datetime) -> dict[str, str]:
    """Stream entry fields of a reading (with the time the front door received it)."""
    return {
        "m": reading.message_id,
        "p": reading.patient_id,
        "s": reading.signal,
        "l": reading.loinc,
        "v": json.dumps(reading.value),
        "u": reading.unit or "",
        "t": reading.effective.isoformat(),
        "src": reading.source,
        "o": reading.original or "",
        "r": received.isoformat(),
    }


def decode(fields: dict[str, str]) -> tuple[Reading, datetime]:
    """A reading and its receipt time from stream entry fields."""
    reading = Reading(
        message_id=fields["m"],
        patient_id=fields["p"],
        signal=fields["s"],
        loinc=fields["l"],
        value=json.loads(fields["v"]),
        unit=fields["u"] or None,
        effective=datetime.fromisoformat(fields["t"]),
        source=fields["src"],
        original=fields["o"] or None,
    )
    return reading, datetime.fromisoformat(fields["r"])


def connect(url: str) -> Any:
    """A Redis client (strings decoded)."""
    import redis

    return redis.Redis.from_url(url, decode_responses=True)


def publish(
    client: Any, readings: Sequence[Reading], *, stream: str = STREAM, chunk: int = 1000
) -> int:
    """Append readings to the stream (pipelined); returns how many were added."""
    now = utcnow()
    for i in range(0, len(readings), chunk):
        pipe = client.pipeline(transaction=False)
        for r in readings[i : i + chunk]:
            pipe.xadd(stream, encode(r, now))
        pipe.execute()
    return len(readings)


def ensure_group(client: Any, *, stream: str = STREAM, group: str = GROUP) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    import redis

    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


@dataclass(slots=True)
class WorkerStats:
    """What a worker did."""

    entries: int = 0
    accepted: int = 0
    duplicates: int = 0
    reclaimed: int = 0


class Worker:
    """One consumer of the group: reclaims stale pending entries, reads new ones, stores and
    scores them through the monitor, and acknowledges them only after the commit."""

    def __init__(
        self,
        monitor: Monitor,
        client: Any,
        *,
        name: str,
        stream: str = STREAM,
        group: str = GROUP,
        batch: int = 500,
        block_ms: int = 500,
        claim_idle_ms: int = 5000,
        pause: float = 0.0,
    ) -> None:
        self.monitor = monitor
        self.client = client
        self.name = name
        self.stream = stream
        self.group = group
        self.batch = batch
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.pause = pause
        self.stats = WorkerStats()
        self.stopping = False
        ensure_group(client, stream=stream, group=group)

    def _process(self, entries: list[tuple[str, dict[str, str]]]) -> None:
        if not entries:
            return
        decoded = [decode(fields) for _, fields in entries if fields]
        if self.pause:
            time.sleep(self.pause)  # test hook: widens the window in which a crash leaves entries
        readings = [r for r, _ in decoded]
        received = {r.message_id: t for r, t in decoded}
        result = self.monitor.ingest(readings, received=received)
        self.stats.entries += len(entries)
        self.stats.accepted += result.accepted
        self.stats.duplicates += result.duplicates
        if self.pause:
            time.sleep(self.pause)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])

    def reclaim(self) -> int:
        """Take over entries another consumer left pending too long, and process them."""
        total = 0
        start = "0-0"
        while True:
            reply = self.client.xautoclaim(
                self.stream, self.group, self.name, self.claim_idle_ms, start, count=self.batch
            )
            start, entries = reply[0], reply[1]
            self._process(entries)
            total += len(entries)
            if start == "0-0" or not entries:
                break
        self.stats.reclaimed += total
        return total

    def step(self) -> int:
        """Reclaim, then read and process one batch of new entries; returns entries handled."""
        n = self.reclaim()
        reply = self.client.xreadgroup(
            self.group, self.name, {self.stream: ">"}, count=self.batch, block=self.block_ms
        )
        for _, entries in reply or ():
            self._process(entries)
            n += len(entries)
        return n

    def run(self, *, idle_exit: float | None = None) -> WorkerStats:
        """Work until stopped (SIGTERM) or, with ``idle_exit``, after that long with no work and
        nothing pending in the group."""
        idle_since = time.monotonic()
        while not self.stopping:
            if self.step():
                idle_since = time.monotonic()
            elif idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                pending = self.client.xpending(self.stream, self.group)["pending"]
                if not pending:
                    break
        return self.stats


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m medagent.monitor.streams --db URL --redis URL --name W`` runs one worker."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--name", default=f"worker-{os.getpid()}")
    parser.add_argument("--stream", default=STREAM)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--claim-idle-ms", type=int, default=5000)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--idle-exit", type=float, default=None)
    parser.add_argument(
        "--no-record", action="store_true", help="do not seed twins from the record"
    )
    args = parser.parse_args(argv)
    monitor = Monitor.open(args.db, worker=args.name, seed_from_record=not args.no_record)
    worker = Worker(
        monitor,
        connect(args.redis),
        name=args.name,
        stream=args.stream,
        batch=args.batch,
        claim_idle_ms=args.claim_idle_ms,
        pause=args.pause,
    )

    def stop(*_: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    stats = worker.run(idle_exit=args.idle_exit)
    print(json.dumps({"worker": args.name, **{k: getattr(stats, k) for k in stats.__slots__}}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
