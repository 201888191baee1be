"""The patient profile on a Synthea patient, the forecast backtest, replay into a live server,
Dask batch scoring."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from monitor_helpers import T0, TOKEN, Clock, vitals

from medagent.monitor.api import create_app
from medagent.monitor.backtest import backtest
from medagent.monitor.batch import Snapshot, batch_score
from medagent.monitor.config import default_config
from medagent.monitor.core import Monitor
from medagent.monitor.profile import patient_profile
from medagent.monitor.replay import replay
from medagent.monitor.synthea import iter_bundles, patient_id, series
from medagent.record.store import RecordStore


@pytest.fixture(scope="session")
def bundles(synthea: Path) -> list[dict[str, Any]]:
    return [b for _, b in iter_bundles(synthea)]


@pytest.fixture(scope="session")
def small_bundle(bundles: list[dict[str, Any]]) -> dict[str, Any]:
    return min(bundles, key=lambda b: len(b["entry"]))


def test_profile_returns_the_whole_picture(
    small_bundle: dict[str, Any], store: RecordStore, tmp_path: Path
) -> None:
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(small_bundle))
    store.import_paths([path])
    pid = patient_id(small_bundle)
    monitor = Monitor(store, clock=Clock(T0))
    profile = patient_profile(monitor, pid)
    assert profile["demographics"]["id"] == pid
    for key in ("problems", "medications", "allergies", "vitals", "labs", "scores", "alerts",
                "timeline"):  # fmt: skip
        assert key in profile
    hr = profile["vitals"]["heart_rate"]
    assert hr["unit"] == "/min" and hr["history"] and hr["age_seconds"] > 0
    assert profile["scores"]["news2"]["missing"]  # Synthea records no consciousness level
    assert any(e["kind"] == "encounter" for e in profile["timeline"])
    started = time.perf_counter()
    for _ in range(20):
        patient_profile(monitor, pid)
    assert (time.perf_counter() - started) / 20 < 0.5


def test_forecast_backtest_on_synthea(bundles: list[dict[str, Any]]) -> None:
    config = default_config()
    result = backtest(
        [series(b, config) for b in bundles[:3]],
        signals=["heart_rate"],
        horizon=config.forecast.horizon,
        origins=2,
    ).to_dict()
    overall = result["overall"]
    assert overall["forecasts"] >= 4
    assert overall["mae"] is not None and 0 <= overall["coverage"] <= 1


@pytest.fixture
def live(monitor: Monitor) -> Iterator[str]:
    app = create_app(monitor, token=TOKEN, background=False)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.02)
    yield f"http://127.0.0.1:{srv.servers[0].sockets[0].getsockname()[1]}"
    srv.should_exit = True
    thread.join(10)


def test_replay_streams_a_patient_into_a_running_server(
    small_bundle: dict[str, Any], live: str, monitor: Monitor
) -> None:
    waits: list[float] = []
    stats = replay(
        small_bundle, url=live, speed=1e9, ward="R1", limit=5, sleep=waits.append, token=TOKEN
    )
    # a blood-pressure panel is one Observation with two readings
    assert stats.posts == 5 and stats.accepted >= stats.observations > 0
    assert len(waits) == 4 and max(waits) <= 2.0
    rows = monitor.ward("R1")
    assert rows and rows[0]["patient_id"] == stats.patient_id and rows[0]["news2"]
    again = replay(
        small_bundle, url=live, speed=1e9, ward="R1", limit=5, sleep=waits.append, token=TOKEN
    )
    assert again.accepted == 0  # idempotent by observation id


def test_dask_batch_scoring_on_a_local_cluster() -> None:
    snaps = [
        Snapshot(
            f"p{i}",
            {
                "heart_rate": 80.0 + i * 10,
                "respiratory_rate": 18.0 + i * 2,
                "sbp": 120.0,
                "temperature": 37.0,
                "spo2": 96.0,
                "consciousness": "alert",
                "o2_flow": 0.0,
            },
        )
        for i in range(6)
    ]
    result = batch_score(snaps, workers=1, partitions=2)
    assert result["patients"] == 6
    by_id = {r["patient_id"]: r for r in result["rows"]}
    assert by_id["p0"]["news2"]["value"] == 0
    assert by_id["p5"]["news2"]["escalation"] == "news2_urgent"  # pulse 130 (2), rate 28 (3)
    assert "sofa" not in by_id["p0"]  # no labs
    assert result["worker_peak_rss_mb"] > 0


def test_replay_command_line(
    small_bundle: dict[str, Any], live: str, monitor: Monitor, tmp_path: Path
) -> None:
    import typer
    from typer.testing import CliRunner

    from medagent.cli.monitor import monitor_app, replay_command

    app = typer.Typer()
    app.command("replay")(replay_command)
    app.add_typer(monitor_app, name="monitor")
    data = tmp_path / "patient.json"
    data.write_text(json.dumps(small_bundle))
    pid = patient_id(small_bundle)
    args = ["replay", pid, "--url", live, "--speed", "1e9", "--limit", "2", "--data", str(data),
            "--json"]  # fmt: skip
    refused = CliRunner().invoke(app, args, env={"MEDAGENT_MONITOR_TOKEN": ""})
    assert refused.exit_code != 0 and "--token" in refused.output
    result = CliRunner().invoke(app, args, env={"MEDAGENT_MONITOR_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["posts"] == 2
    missing = CliRunner().invoke(app, [*args[:1], "Nobody", *args[2:]])
    assert missing.exit_code == 2


def test_batch_command_scores_the_record(
    store: RecordStore, db_path: str, monitor: Monitor
) -> None:
    import typer
    from typer.testing import CliRunner

    from medagent.cli.monitor import monitor_app

    store.put([{"resourceType": "Patient", "id": "p1", "gender": "female"}])
    monitor.ingest_fhir(vitals("a", T0, hr=135, rr=26, spo2=95))
    app = typer.Typer()
    app.add_typer(monitor_app, name="monitor")
    result = CliRunner().invoke(app, ["monitor", "batch", "--db", db_path, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["patients"] == 1 and out["rows"][0]["news2"]["escalation"] == "news2_emergency"
