"""Every worked example of every scale, one test each (ids like ``cha2ds2_vasc:lip2010-edge-2``)."""

from __future__ import annotations

import pytest

from medagent.scales import all_scales
from medagent.scales.model import Example, Scale
from medagent.scales.verify import band_edges_without_example, run_example

SCALES = all_scales()
CASES = [(s, ex) for s in SCALES for ex in s.examples]


@pytest.mark.parametrize(("scale", "example"), CASES, ids=[f"{s.id}:{e.id}" for s, e in CASES])
def test_worked_example(scale: Scale, example: Example) -> None:
    outcome = run_example(scale, example)
    assert outcome.ok, outcome.message


@pytest.mark.parametrize("scale", SCALES, ids=[s.id for s in SCALES])
def test_every_band_has_an_edge_example(scale: Scale) -> None:
    assert band_edges_without_example(scale) == []


@pytest.mark.parametrize("scale", SCALES, ids=[s.id for s in SCALES])
def test_scale_cites_a_findable_source(scale: Scale) -> None:
    assert any(r.doi or r.pmid for r in scale.references)
    assert scale.primary_reference.link is not None
    assert len(scale.examples) >= 3
