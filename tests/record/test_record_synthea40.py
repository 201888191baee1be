"""All 40 Synthea patients import cleanly (validated), and re-importing never duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from medagent.record import RecordStore

pytestmark = pytest.mark.synthea40


def test_all_40_synthea_patients_import_cleanly(synthea40: Path, tmp_path: Path) -> None:
    with RecordStore.open(str(tmp_path / "s40.db")) as store:
        report = store.import_paths([synthea40], workers=2)
        assert report.failed == []
        assert len(report.imported) == 40
        assert report.resources == 118_018
        patients = store.patients()
        assert len(patients) == 40
        counts = store.counts()
        assert counts["Observation"] == 57_857
        assert counts["Patient"] == 40
        # organisations shared between bundles are stored once
        assert sum(counts.values()) < report.resources
        largest = max(patients, key=lambda p: p.resource_count)
        assert largest.resource_count > 5_000
        assert store.observations(largest.id, codes=["8480-6"])
