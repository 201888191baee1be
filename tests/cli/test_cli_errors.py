"""The console entry point prints errors that escape a command as one line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from medagent.record.store import RecordStore
from medagent.secure.at_rest import LocalKeyProvider


# Regression: a row encrypted under a key the keyring does not hold made `medagent patients`
# print a Python traceback (the message inside was clear, the output was not).
def test_missing_encryption_key_is_one_error_line(tmp_path: Path) -> None:
    db = tmp_path / "record.db"
    with RecordStore.open(str(db), keys=LocalKeyProvider.generate("kek-old")) as store:
        store.put([{"resourceType": "Patient", "id": "p1", "gender": "female"}])
    env = {
        **os.environ,
        "MEDAGENT_KEK": LocalKeyProvider.generate("kek-other").to_text(),
        "MEDAGENT_AUDIT": str(tmp_path / "audit.db"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "medagent.cli", "patients", "--db", str(db)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("error: ") and "kek-old" in run.stderr
