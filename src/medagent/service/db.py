"""Service tables: assessments, CDS feedback, replayed JWT ids and used links (Alembic-managed).

The patient data of assessments and feedback is encrypted at rest with the record's scheme
(`medagent.secure.at_rest.SealedColumns`); what queries filter on stays in clear.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from medagent.secure.at_rest import KeyProvider, SealedColumns, default_key_provider

VERSION_TABLE = "service_alembic_version"

metadata = sa.MetaData()

# One row per assessment: enough to re-explain it after the scale library changes (the scale
# definition as it was, the inputs, provenance and overrides, the result with its explanation).
# Encrypted (see ASSESSMENT_SEALING): inputs, provenance, overrides, result, questionnaire
# response, display, band and the value (in `value_sealed`; `value` is NULL in encrypted rows).
# In clear: ids, patient, scale id/version/definition (published text), complete, source, user,
# time. A NULL `kek_id` marks a plaintext row.
assessments = sa.Table(
    "service_assessment",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("scale_id", sa.String(64), nullable=False),
    sa.Column("scale_version", sa.String(32), nullable=False),
    sa.Column("scale_definition", sa.Text(), nullable=False),
    sa.Column("inputs", sa.Text(), nullable=False),
    sa.Column("provenance", sa.Text(), nullable=False),
    sa.Column("overrides", sa.Text(), nullable=False),
    sa.Column("result", sa.Text(), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("display", sa.Text(), nullable=False),
    sa.Column("band", sa.Text(), nullable=True),
    sa.Column("complete", sa.Boolean(), nullable=False),
    sa.Column("questionnaire_response", sa.Text(), nullable=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("user", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("value_sealed", sa.Text(), nullable=True),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_service_assessment_kek", assessments.c.kek_id)
sa.Index(
    "ix_service_assessment_patient",
    assessments.c.patient_id,
    assessments.c.scale_id,
    assessments.c.created_at,
)

feedback = sa.Table(
    "service_cds_feedback",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("service_id", sa.String(64), nullable=False),
    sa.Column("card", sa.String(128), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("client", sa.String(255), nullable=False),
    sa.Column("received_at", sa.DateTime(), nullable=False),
    sa.Column("kek_id", sa.String(64), nullable=True),
    sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
)
sa.Index("ix_service_cds_feedback_kek", feedback.c.kek_id)

ASSESSMENT_SEALING = SealedColumns(
    assessments,
    keys=("id",),
    columns=(
        "inputs",
        "provenance",
        "overrides",
        "result",
        "questionnaire_response",
        "display",
        "band",
        "value_sealed",
    ),
    moved=(("value_sealed", "value"),),
)
FEEDBACK_SEALING = SealedColumns(feedback, keys=("id",), columns=("body",))
SEALED_TABLES = (ASSESSMENT_SEALING, FEEDBACK_SEALING)

# JWT ids of CDS clients already seen (replay protection) until their expiry.
seen_jti = sa.Table(
    "service_cds_jti",
    metadata,
    sa.Column("issuer", sa.String(255), primary_key=True),
    sa.Column("jti", sa.String(255), primary_key=True),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
)

# Patient self-assessment links that were used (one submission per link).
used_links = sa.Table(
    "service_link_use",
    metadata,
    sa.Column("link_id", sa.String(64), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("used_at", sa.DateTime(), nullable=False),
)


def now_utc() -> datetime:
    """The current time, naive UTC (as every table stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def migrate(engine: Engine) -> None:
    """Create or upgrade the service tables (version table `service_alembic_version`)."""
    from alembic import command
    from alembic.config import Config

    with resources.as_file(resources.files("medagent.service") / "migrations") as script_dir:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    """One stored assessment, decoded."""

    id: str
    patient_id: str
    scale_id: str
    scale_version: str
    scale_definition: dict[str, Any]
    inputs: dict[str, Any]
    provenance: dict[str, Any]
    overrides: list[dict[str, Any]]
    result: dict[str, Any]
    value: float | None
    display: str
    band: str | None
    complete: bool
    questionnaire_response: dict[str, Any] | None
    source: str
    user: str
    created_at: datetime

    def summary(self) -> dict[str, Any]:
        """The row without the bulky parts (definition, result, response)."""
        return {
            "id": self.id,
            "patient_id": self.patient_id,
            "scale_id": self.scale_id,
            "scale_version": self.scale_version,
            "value": self.value,
            "display": self.display,
            "band": self.band,
            "complete": self.complete,
            "alerts": [a.get("id") for a in self.result.get("alerts", [])],
            "source": self.source,
            "user": self.user,
            "created_at": self.created_at.isoformat() + "Z",
        }


def _opened(spec: SealedColumns, keys: KeyProvider | None, r: Any) -> dict[str, Any]:
    """The sealed columns of a row in clear (the keyring is loaded only for encrypted rows)."""
    return spec.open_row(lambda: keys or default_key_provider(), r)


def _row(r: Any, keys: KeyProvider | None = None) -> AssessmentRow:
    plain = _opened(ASSESSMENT_SEALING, keys, r)
    qr = plain["questionnaire_response"]
    if r.kek_id is None:
        value = r.value
    else:
        value = None if plain["value_sealed"] is None else json.loads(plain["value_sealed"])
    return AssessmentRow(
        id=r.id,
        patient_id=r.patient_id,
        scale_id=r.scale_id,
        scale_version=r.scale_version,
        scale_definition=json.loads(r.scale_definition),
        inputs=json.loads(plain["inputs"]),
        provenance=json.loads(plain["provenance"]),
        overrides=json.loads(plain["overrides"]),
        result=json.loads(plain["result"]),
        value=value,
        display=plain["display"],
        band=plain["band"],
        complete=bool(r.complete),
        questionnaire_response=json.loads(qr) if qr else None,
        source=r.source,
        user=r.user,
        created_at=r.created_at,
    )


def save_assessment(
    engine: Engine,
    *,
    patient_id: str,
    scale_id: str,
    scale_version: str,
    scale_definition: dict[str, Any],
    inputs: dict[str, Any],
    provenance: dict[str, Any],
    overrides: list[dict[str, Any]],
    result: dict[str, Any],
    value: float | None,
    display: str,
    band: str | None,
    complete: bool,
    source: str,
    user: str,
    questionnaire_response: dict[str, Any] | None = None,
    keys: KeyProvider | None = None,
    encrypt: bool = True,
) -> str:
    """Store one assessment (encrypted under ``keys``, default the configured keyring)."""
    new_id = str(uuid.uuid4())
    plain: dict[str, Any] = {
        "inputs": json.dumps(inputs, ensure_ascii=False, default=str),
        "provenance": json.dumps(provenance, ensure_ascii=False, default=str),
        "overrides": json.dumps(overrides, ensure_ascii=False, default=str),
        "result": json.dumps(result, ensure_ascii=False, default=str),
        "questionnaire_response": json.dumps(questionnaire_response)
        if questionnaire_response
        else None,
        "display": display,
        "band": band,
    }
    if encrypt:
        plain["value_sealed"] = None if value is None else json.dumps(value)
        stored = ASSESSMENT_SEALING.seal(keys or default_key_provider(), (new_id,), plain)
        stored["value"] = None
    else:
        stored = {**plain, "value": value, "value_sealed": None}
    with engine.begin() as conn:
        conn.execute(
            assessments.insert().values(
                id=new_id,
                patient_id=patient_id,
                scale_id=scale_id,
                scale_version=scale_version,
                scale_definition=json.dumps(scale_definition, ensure_ascii=False),
                complete=complete,
                source=source,
                user=user,
                created_at=now_utc(),
                **stored,
            )
        )
    return new_id


def list_assessments(
    engine: Engine,
    *,
    patient_id: str,
    scale_id: str | None = None,
    limit: int = 200,
    keys: KeyProvider | None = None,
) -> list[AssessmentRow]:
    """A patient's assessments (of one scale, if given), oldest first."""
    c = assessments.c
    stmt = sa.select(assessments).where(c.patient_id == patient_id)
    if scale_id is not None:
        stmt = stmt.where(c.scale_id == scale_id)
    stmt = stmt.order_by(c.created_at.desc(), c.id).limit(limit)
    with engine.connect() as conn:
        rows = [_row(r, keys) for r in conn.execute(stmt)]
    return rows[::-1]


def get_assessment(
    engine: Engine, assessment_id: str, *, keys: KeyProvider | None = None
) -> AssessmentRow | None:
    """One assessment by id, or None."""
    with engine.connect() as conn:
        r = conn.execute(sa.select(assessments).where(assessments.c.id == assessment_id)).first()
    return _row(r, keys) if r is not None else None


def save_feedback(
    engine: Engine,
    *,
    service_id: str,
    items: list[dict[str, Any]],
    client: str,
    keys: KeyProvider | None = None,
    encrypt: bool = True,
) -> int:
    """Store CDS Hooks feedback entries (bodies encrypted); returns how many."""
    now = now_utc()
    provider = (keys or default_key_provider()) if encrypt else None
    with engine.begin() as conn:
        for item in items:
            body = json.dumps(item, ensure_ascii=False)
            row = {
                "service_id": service_id,
                "card": str(item.get("card", ""))[:128],
                "outcome": str(item.get("outcome", ""))[:32],
                "body": body if provider is None else "",
                "client": client[:255],
                "received_at": now,
            }
            if provider is None:
                conn.execute(feedback.insert().values(**row))
                continue
            # The ciphertext is bound to the row id, which the database assigns on insert.
            new_id = conn.execute(feedback.insert().values(**row).returning(feedback.c.id))
            fid = new_id.scalar_one()
            sealed = FEEDBACK_SEALING.seal(provider, (fid,), {"body": body})
            conn.execute(feedback.update().where(feedback.c.id == fid).values(**sealed))
    return len(items)


def list_feedback(
    engine: Engine, service_id: str, *, keys: KeyProvider | None = None
) -> list[dict[str, Any]]:
    """The feedback stored for one service, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(feedback).where(feedback.c.service_id == service_id).order_by(feedback.c.id)
        ).all()
    return [json.loads(_opened(FEEDBACK_SEALING, keys, r)["body"]) for r in rows]


def claim_jti(engine: Engine, *, issuer: str, jti: str, expires_at: datetime) -> bool:
    """Record a JWT id; False if it was seen before (a replay). Expired ids are pruned."""
    now = now_utc()
    try:
        with engine.begin() as conn:
            conn.execute(seen_jti.delete().where(seen_jti.c.expires_at < now))
            conn.execute(seen_jti.insert().values(issuer=issuer, jti=jti, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def claim_link(engine: Engine, *, link_id: str, patient_id: str) -> bool:
    """Mark a self-assessment link used; False if it already was."""
    try:
        with engine.begin() as conn:
            conn.execute(
                used_links.insert().values(
                    link_id=link_id, patient_id=patient_id, used_at=now_utc()
                )
            )
    except IntegrityError:
        return False
    return True


def link_used(engine: Engine, link_id: str) -> bool:
    """True if the link was already used."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(used_links.c.link_id).where(used_links.c.link_id == link_id))
        return row.first() is not None
