"""Encryption at rest of the service tables: assessments and CDS feedback (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from medagent.secure.at_rest import TOKEN_PREFIX, LocalKeyProvider
from medagent.secure.errors import AtRestError
from medagent.service import db

A = db.assessments.c


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    made = sa.create_engine(f"sqlite:///{tmp_path / 's.db'}")
    db.migrate(made)
    yield made
    made.dispose()


def _save(engine: Any, keys: LocalKeyProvider, *, encrypt: bool = True, value: float = 4) -> str:
    return db.save_assessment(
        engine,
        patient_id="p1",
        scale_id="phq2",
        scale_version="1.0.0",
        scale_definition={"id": "phq2", "version": "1.0.0"},
        inputs={"anhedonia": "several_days"},
        provenance={"anhedonia": {"source": "patient"}},
        overrides=[{"input": "anhedonia", "by": "dr"}],
        result={"value": value, "explanation": "Ada Lovelace scored 4"},
        value=value,
        display=str(value),
        band="Positive screen",
        complete=True,
        source="patient",
        user="dr",
        questionnaire_response={"resourceType": "QuestionnaireResponse", "status": "completed"},
        keys=keys,
        encrypt=encrypt,
    )


def test_assessment_columns_are_encrypted_and_read_back(engine: Any) -> None:
    keys = LocalKeyProvider.generate("k1")
    new_id = _save(engine, keys, value=4.5)
    with engine.connect() as conn:
        raw = conn.execute(sa.select(db.assessments)).one()
    for column in db.ASSESSMENT_SEALING.columns:
        assert raw._mapping[column].startswith(TOKEN_PREFIX), column
    assert raw.value is None and raw.kek_id == "k1"
    assert raw.patient_id == "p1" and raw.scale_id == "phq2"  # what queries filter on
    (row,) = db.list_assessments(engine, patient_id="p1", keys=keys)
    assert row.id == new_id and row.value == 4.5 and row.display == "4.5"
    assert row.band == "Positive screen"
    assert row.result["explanation"] == "Ada Lovelace scored 4"
    assert row.questionnaire_response == {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
    }
    assert db.get_assessment(engine, new_id, keys=keys) == row


def test_legacy_assessment_encrypted_in_place(engine: Any) -> None:
    keys = LocalKeyProvider.generate("k1")
    old_id = _save(engine, keys, encrypt=False, value=3)
    before = db.get_assessment(engine, old_id, keys=keys)
    assert db.ASSESSMENT_SEALING.status(engine) == {None: 1}
    assert db.ASSESSMENT_SEALING.encrypt_rows(engine, keys) == 1
    with engine.connect() as conn:
        raw = conn.execute(sa.select(db.assessments)).one()
    assert raw.value is None and raw.value_sealed.startswith(TOKEN_PREFIX)  # value moved
    assert db.get_assessment(engine, old_id, keys=keys) == before
    keys.add_key("k2")
    assert db.ASSESSMENT_SEALING.rewrap_rows(engine, keys) == 1
    keys.retire_key("k1")
    assert db.get_assessment(engine, old_id, keys=keys) == before


def test_swapped_assessment_values_are_refused(engine: Any) -> None:
    keys = LocalKeyProvider.generate("k1")
    first, second = _save(engine, keys), _save(engine, keys)
    with engine.begin() as conn:
        stolen = conn.execute(sa.select(A.result).where(A.id == first)).scalar_one()
        conn.execute(db.assessments.update().where(A.id == second).values(result=stolen))
    with pytest.raises(AtRestError, match=f"service_assessment/{second}: column result"):
        db.get_assessment(engine, second, keys=keys)
    with engine.begin() as conn:  # a value moved to another column of its own row
        display = conn.execute(sa.select(A.display).where(A.id == first)).scalar_one()
        conn.execute(db.assessments.update().where(A.id == first).values(band=display))
    with pytest.raises(AtRestError, match="column band is corrupt or was moved"):
        db.get_assessment(engine, first, keys=keys)


def test_feedback_bodies_encrypted(engine: Any) -> None:
    keys = LocalKeyProvider.generate("k1")
    items = [{"card": "c1", "outcome": "accepted", "note": "Ada"}, {"card": "c2", "outcome": "x"}]
    assert db.save_feedback(engine, service_id="s", items=items, client="ehr", keys=keys) == 2
    db.save_feedback(engine, service_id="s", items=items[:1], client="ehr", encrypt=False)
    with engine.connect() as conn:
        bodies = conn.execute(sa.select(db.feedback.c.body)).scalars().all()
    assert [b.startswith(TOKEN_PREFIX) for b in bodies] == [True, True, False]
    assert db.list_feedback(engine, "s", keys=keys) == [*items, items[0]]
    assert db.FEEDBACK_SEALING.encrypt_rows(engine, keys) == 1
    assert db.list_feedback(engine, "s", keys=keys) == [*items, items[0]]
    assert json.dumps(db.FEEDBACK_SEALING.status(engine)) == '{"k1": 3}'
