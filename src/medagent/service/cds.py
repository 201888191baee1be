"""CDS Hooks 2.0 services: discovery, prefetch or FHIR fetch, and the cards for each hook."""

from __future__ import annotations

import hashlib
import queue
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx

from medagent.errors import MedAgentError
from medagent.secure.audit import AuditLog
from medagent.service.problems import ProblemError

MAX_FETCH = 20_000  # resources read from a FHIR server per hook call, at most
SUMMARY_MAX = 139

# RxNorm ingredients of oral and parenteral anticoagulants (order-select/-sign checks).
ANTICOAGULANTS = {
    "11289": "warfarin",
    "1364430": "apixaban",
    "1114195": "rivaroxaban",
    "1037042": "dabigatran",
    "1599538": "edoxaban",
}
VTE_PROPHYLAXIS = {
    "5224": "heparin",
    "67108": "enoxaparin",
    "67109": "dalteparin",
    "321208": "fondaparinux",
}


@cache
def services() -> list[dict[str, Any]]:
    """The discovery document's services."""
    prefetch = prefetch_templates()
    return [
        {
            "id": "medagent-patient-view",
            "hook": "patient-view",
            "title": "medagent: clinical scales for this patient",
            "description": (
                "Recommends the clinical scales that fit the patient, says what the record already "
                "fills, and raises urgent results (e.g. NEWS2 of 7 or more) as critical cards."
            ),
            "prefetch": prefetch,
            "usageRequirements": "Without prefetch, send fhirServer and fhirAuthorization.",
        },
        {
            "id": "medagent-order-select",
            "hook": "order-select",
            "title": "medagent: anticoagulant and VTE prophylaxis check",
            "description": (
                "For anticoagulant orders, stroke (CHA2DS2-VASc/VA) and bleeding (HAS-BLED) risk; "
                "for heparin/LMWH prophylaxis, VTE risk (Caprini, Padua)."
            ),
            "prefetch": prefetch,
        },
        {
            "id": "medagent-order-sign",
            "hook": "order-sign",
            "title": "medagent: anticoagulant and VTE prophylaxis check at signing",
            "description": "The order-select checks again when the order is signed.",
            "prefetch": prefetch,
        },
    ]


SERVICE_HOOKS = {
    "medagent-patient-view": "patient-view",
    "medagent-order-select": "order-select",
    "medagent-order-sign": "order-sign",
}


@cache
def _wanted_loincs() -> frozenset[str]:
    from medagent.scales import all_scales

    codes: set[str] = set()
    for scale in all_scales():
        for spec in scale.inputs:
            codes.update(spec.codes.loinc)
        if scale.indications is not None:
            for trigger in scale.indications.triggers:
                codes.update(trigger.loinc)
    return frozenset(codes)


@cache
def prefetch_templates() -> dict[str, str]:
    """What the services need: the patient, conditions, medications, the observations with the
    LOINC codes the scales use (newest first) and procedures."""
    codes = ",".join(sorted(_wanted_loincs()))
    pid = "{{context.patientId}}"
    return {
        "patient": f"Patient/{pid}",
        "conditions": f"Condition?patient={pid}&_count=1000",
        "medications": f"MedicationRequest?patient={pid}&_count=1000",
        "observations": f"Observation?patient={pid}&code={codes}&_sort=-date&_count=1000",
        "procedures": f"Procedure?patient={pid}&_sort=-date&_count=1000",
    }


@cache
def observation_horizon() -> timedelta:
    """How far back any scale or the recommender looks (the longest window of all)."""
    from medagent.populate import default_defaults, parse_duration
    from medagent.scales import all_scales

    d = default_defaults()
    windows = [timedelta(days=90), d.observation_default.window, *(k.window for k in d.kinds)]
    windows.append(parse_duration(d.procedure_lookback))
    for scale in all_scales():
        windows += [parse_duration(i.lookback) for i in scale.inputs if i.lookback]
    return max(windows) + timedelta(days=1)


def _recent(resource: dict[str, Any], since: datetime) -> bool:
    from medagent.record.fhirtime import parse_fhir_time

    period = resource.get("effectivePeriod") or resource.get("performedPeriod") or {}
    when = (
        resource.get("effectiveDateTime")
        or resource.get("performedDateTime")
        or (period.get("start") if isinstance(period, dict) else None)
    )
    if not isinstance(when, str):
        return True  # no time: the engine decides
    parsed = parse_fhir_time(when)
    if parsed is None:
        return True
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed >= since


def _observation_wanted(resource: dict[str, Any]) -> bool:
    wanted = _wanted_loincs()
    concepts = [resource.get("code") or {}]
    concepts += [c.get("code") or {} for c in resource.get("component") or []]
    return any(c.get("code") in wanted for concept in concepts for c in concept.get("coding") or [])


def resources_from_prefetch(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource in the prefetch (single resources and search Bundles)."""
    out: list[dict[str, Any]] = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            out += [
                e["resource"]
                for e in value.get("entry") or []
                if isinstance(e, dict) and isinstance(e.get("resource"), dict)
            ]
        elif "resourceType" in value:
            out.append(value)
    return out


def fetch_from_server(
    fhir_server: str, authorization: dict[str, Any] | None, *, patient_id: str
) -> list[dict[str, Any]]:
    """Read what the prefetch templates ask for from the EHR's FHIR server (following `next`)."""
    headers = {"Accept": "application/fhir+json"}
    if authorization and authorization.get("access_token"):
        headers["Authorization"] = f"Bearer {authorization['access_token']}"
    base = fhir_server.rstrip("/")
    pid = quote(patient_id, safe="")
    out: list[dict[str, Any]] = []
    try:
        with httpx.Client(headers=headers, timeout=10.0, trust_env=False) as client:
            for template in prefetch_templates().values():
                url: str | None = base + "/" + template.replace("{{context.patientId}}", pid)
                while url and len(out) < MAX_FETCH:
                    response = client.get(url)
                    if response.status_code == 404:
                        break
                    response.raise_for_status()
                    body = response.json()
                    if body.get("resourceType") != "Bundle":
                        out.append(body)
                        break
                    out += [e["resource"] for e in body.get("entry") or [] if "resource" in e]
                    url = next(
                        (
                            lk["url"]
                            for lk in body.get("link") or []
                            if lk.get("relation") == "next"
                        ),
                        None,
                    )
                    # Follow `next` only on the same server: a page must not send us elsewhere.
                    if url is not None and not url.startswith(base + "/"):
                        url = None
    except (httpx.HTTPError, ValueError) as exc:
        raise ProblemError(
            412, "FHIR server unavailable", detail=f"cannot read the patient from fhirServer: {exc}"
        ) from exc
    return out


_SCRATCH: queue.SimpleQueue[Any] = queue.SimpleQueue()


def _scratch_engine() -> Any:
    """An in-memory SQLite engine with the record schema, reused so its SQL stays compiled."""
    import sqlalchemy as sa
    from sqlalchemy.pool import StaticPool

    from medagent.record.db import metadata

    try:
        return _SCRATCH.get_nowait()
    except queue.Empty:
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
        metadata.create_all(engine)
        return engine


@contextmanager
def scratch_store(
    resources: Iterable[dict[str, Any]],
    *,
    audit: AuditLog | None = None,
    source: str = "cds-prefetch",
) -> Iterator[Any]:
    """An in-memory record store holding only the resources the scales can use, for one call.

    With an audit log, the store is audited: the data the client sent is written to it (a
    ``write`` entry per patient, from ``source``) and read by the scales (a ``read`` entry), in
    the caller's audit context.
    """
    from medagent.record.audited import AuditedRecordStore
    from medagent.record.db import codes_table, resources_table
    from medagent.record.store import RecordStore

    # Observations that no scale codes, and observations and procedures older than the longest
    # lookback window, cannot change any result: leave them out (most of a long record).
    since = datetime.now(UTC).replace(tzinfo=None) - observation_horizon()
    kept = [
        r
        for r in resources
        if isinstance(r.get("id"), str)
        and isinstance(r.get("resourceType"), str)
        and (r["resourceType"] != "Observation" or (_recent(r, since) and _observation_wanted(r)))
        and (r["resourceType"] != "Procedure" or _recent(r, since))
    ]
    engine = _scratch_engine()
    try:
        # In memory for one call and gone after it: nothing is at rest, so nothing to encrypt.
        store = (
            RecordStore(engine, encrypt=False)
            if audit is None
            else AuditedRecordStore(engine, audit=audit, encrypt=False)
        )
        store.put(kept, source=source)
        yield store
    finally:
        with engine.begin() as conn:
            conn.execute(codes_table.delete())
            conn.execute(resources_table.delete())
        _SCRATCH.put(engine)


def _indicator(severity: str | None) -> str:
    return {"critical": "critical", "high": "warning"}.get(severity or "", "info")


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _card_uuid(*parts: str) -> str:
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def scale_card(
    *,
    base_url: str,
    patient_id: str,
    scale_id: str,
    store: Any,
    at: datetime,
    reasons: list[str] | None = None,
) -> dict[str, Any] | None:
    """One card: the result (or what is filled so far), guidance, source and app link."""
    from medagent.populate import populate
    from medagent.scales import format_value, get_scale

    scale = get_scale(scale_id)
    population = populate(scale, patient_id, store=store, at=at, stored_overrides=False)
    try:
        result = population.evaluate().result
    except MedAgentError:
        return None  # the record's values cannot be scored together (said on the scale's page)
    title = scale.short_title or scale.title
    filled, total = len(population.filled), len(scale.inputs)
    if result.complete and result.band is not None:
        summary = f"{title}: {result.display} — {result.band.label}"
        severity = result.band.severity
        detail = [result.band.interpretation] + [g.text for g in result.band.guidance]
    elif result.complete:
        summary, severity, detail = f"{title}: {result.display}", None, []
    elif result.possible_bands and all(
        b.severity == result.possible_bands[0].severity for b in result.possible_bands
    ):
        # Every answer still missing leads to the same severity: say so now (e.g. NEWS2 ≥ 7).
        band = result.possible_bands[0]
        low = format_value(scale, result.minimum)
        summary = f"{title}: at least {low} — {band.label} ({filled} of {total} items)"
        severity = band.severity
        detail = [band.interpretation] + [g.text for g in band.guidance]
    else:
        summary = f"{title}: {filled} of {total} items filled from the record"
        severity = None
        missing = ", ".join(m.label for m in result.missing[:6])
        detail = [f"Still needed: {missing}."] if missing else []
    if result.alerts:
        # A single answer that needs action whatever the total (PHQ-9 item 9) leads the card.
        first = result.alerts[0]
        summary = f"{title}: {first.text}"
        severity = "critical" if any(a.severity == "critical" for a in result.alerts) else "high"
        detail = [f"Alert: {a.text}" for a in result.alerts] + detail
    if reasons:
        detail.insert(0, "Why: " + "; ".join(reasons[:4]) + ".")
    ref = scale.primary_reference
    return {
        "uuid": _card_uuid(patient_id, scale.id, at.date().isoformat(), summary),
        "summary": _short(summary),
        "detail": "\n\n".join(d for d in detail if d),
        "indicator": _indicator(severity),
        "source": {
            "label": f"medagent · {ref.citation[:90]}",
            "url": ref.link or f"{base_url}/api/scales/{scale.id}",
            "topic": {"system": f"{base_url}/scales", "code": scale.id, "display": title},
        },
        "links": [
            {
                "label": f"Open {title} in medagent",
                "url": f"{base_url}/smart/launch",
                "type": "smart",
                "appContext": f'{{"patient":"{patient_id}","scale":"{scale.id}"}}',
            }
        ],
    }


def patient_view_cards(
    *, base_url: str, patient_id: str, store: Any, at: datetime | None = None, limit: int = 4
) -> list[dict[str, Any]]:
    """Recommended scales with what is filled; urgent results first, as critical cards."""
    from medagent.recommend import from_record, recommend

    when = at or datetime.now(UTC).replace(tzinfo=None)
    context = from_record(store, patient_id, at=when)
    rec = recommend(context, limit=limit)
    chosen: dict[str, list[str]] = {}
    for entry in rec.entries:
        chosen[entry.best.scale.id] = [r.text for r in entry.best.reasons]
    vitals_only = "news2" not in chosen and any(
        o.loinc in _NEWS2_VITALS for o in context.observations
    )
    if vitals_only:
        chosen["news2"] = ["vital signs recorded"]
    cards: list[dict[str, Any]] = []
    for sid, reasons in chosen.items():
        card = scale_card(
            base_url=base_url,
            patient_id=patient_id,
            scale_id=sid,
            store=store,
            at=when,
            reasons=reasons,
        )
        # An early-warning score added only because vitals exist is shown when it alarms.
        if card is None or (sid == "news2" and vitals_only and card["indicator"] == "info"):
            continue
        cards.append(card)
    order = {"critical": 0, "warning": 1, "info": 2}
    cards.sort(key=lambda c: order[c["indicator"]])
    return cards


_NEWS2_VITALS = frozenset({"9279-1", "59408-5", "2708-6", "8480-6", "8867-4", "8310-5"})


def _draft_codes(draft_orders: Any) -> set[str]:
    codes: set[str] = set()
    entries = draft_orders.get("entry", []) if isinstance(draft_orders, dict) else []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        concept = resource.get("medicationCodeableConcept") or resource.get("code") or {}
        for coding in concept.get("coding") or []:
            if isinstance(coding, dict) and coding.get("code"):
                codes.add(str(coding["code"]))
    return codes


def order_cards(
    *,
    base_url: str,
    patient_id: str,
    store: Any,
    draft_orders: Any,
    at: datetime | None = None,
) -> list[dict[str, Any]]:
    """Cards for draft orders: anticoagulants → stroke and bleeding risk; heparins → VTE risk."""
    when = at or datetime.now(UTC).replace(tzinfo=None)
    codes = _draft_codes(draft_orders)
    scales: list[tuple[str, str]] = []
    anticoag = sorted(ANTICOAGULANTS[c] for c in codes if c in ANTICOAGULANTS)
    prophylaxis = sorted(VTE_PROPHYLAXIS[c] for c in codes if c in VTE_PROPHYLAXIS)
    if anticoag:
        why = f"anticoagulant ordered: {', '.join(anticoag)}"
        scales += [("cha2ds2_vasc", why), ("cha2ds2_va", why), ("has_bled", why)]
    if prophylaxis:
        why = f"VTE prophylaxis ordered: {', '.join(prophylaxis)}"
        scales += [("caprini_2005", why), ("padua", why)]
    cards = []
    for scale_id, why in scales:
        card = scale_card(
            base_url=base_url,
            patient_id=patient_id,
            scale_id=scale_id,
            store=store,
            at=when,
            reasons=[why],
        )
        if card is not None:
            cards.append(card)
    return cards
