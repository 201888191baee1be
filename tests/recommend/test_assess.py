"""medagent assess: recommend, populate and score in one go, on a demo patient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medagent.cli import app
from medagent.demo import load_demo
from medagent.demo.build import INDEX_TIME
from medagent.recommend import assess
from medagent.record import RecordStore

SEPSIS = "demo-sepsis-ward"
AT = INDEX_TIME.replace(tzinfo=None)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = f"sqlite:///{tmp_path_factory.mktemp('assess') / 'demo.db'}"
    store = RecordStore.open(url)
    load_demo(store, now=INDEX_TIME)
    store.close()
    yield url


def test_assess_scores_what_it_recommends_and_never_assumes(db: str) -> None:
    with RecordStore.open(db) as store:
        outcome = assess(store, SEPSIS, at=AT, setting="ward")
    assert outcome.assessed
    recommended = [e.best.scale.id for e in outcome.recommendation.entries]
    assert [a.evaluation.result.scale_id for a in outcome.assessed] == recommended
    for item in outcome.assessed:
        result = item.evaluation.result
        assert set(result.inputs) <= set(item.population.filled)  # only what the record gave
        if not result.complete:
            assert result.missing and all(m.answerable_by for m in result.missing)


def test_assess_command_prints_a_table_and_json(db: str) -> None:
    runner = CliRunner()
    args = ["assess", SEPSIS, "--db", db, "--at", AT.isoformat(), "--setting", "ward"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "Still needed" in table.output
    data = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert data["assessed"][0]["evaluation"]["result"]["scale"]


def test_assess_unknown_patient_fails_cleanly(db: str, tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["assess", "nobody", "--db", db])
    assert out.exit_code == 2
    assert "error:" in out.output
