"""SDC $populate: a Questionnaire answered from a demo patient's record, with provenance."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from medagent.demo import load_demo
from medagent.demo.build import INDEX_TIME
from medagent.populate import populate
from medagent.record import RecordStore
from medagent.sdc import validate
from medagent.sdc.populate import ANSWER_SOURCE, populate_operation

AF = "demo-af-anticoagulation"
AT = INDEX_TIME.replace(tzinfo=None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    record = RecordStore.open(f"sqlite:///{tmp_path_factory.mktemp('sdc') / 'demo.db'}")
    load_demo(record, now=INDEX_TIME)
    yield record
    record.close()


def _parts(parameters: dict[str, object]) -> dict[str, dict[str, object]]:
    return {p["name"]: p["resource"] for p in parameters["parameter"]}  # type: ignore[index,union-attr]


def test_populate_answers_from_the_record_with_sources(store: RecordStore) -> None:
    population = populate("cha2ds2_vasc", AF, store=store, at=AT)
    out = populate_operation(population, recorded=INDEX_TIME)
    parts = _parts(out)
    response, provenance, issues = parts["response"], parts["provenance"], parts["issues"]
    for resource in (response, provenance, issues):
        validate(resource)
    assert response["status"] == "in-progress"
    answered = {i["linkId"]: i for i in response["item"]}  # type: ignore[union-attr]
    assert set(population.filled) <= set(answered)
    assert not set(population.unfilled) & set(answered)  # nothing answered that was not found
    age = answered["age"]["extension"][0]
    assert age["url"].endswith(ANSWER_SOURCE)
    sources = {e["what"]["reference"] for e in provenance.get("entity", [])}  # type: ignore[union-attr]
    filled_refs = {f.provenance.reference for f in population.filled.values()}
    assert sources == {r for r in filled_refs if r}
    texts = [i["diagnostics"] for i in issues["issue"]]  # type: ignore[index]
    for gap in population.unfilled:
        assert any(t.startswith(f"{gap}:") for t in texts)
