"""HL7 v2 ORU^R01 results to readings (parsed with the `hl7` library) and the ACK/NACK replies."""

from __future__ import annotations

from datetime import datetime

import hl7  # type: ignore[import-untyped]

from medagent.monitor.config import MonitorConfig
from medagent.monitor.errors import IngestError
from medagent.monitor.readings import Parsed, Reading, make_reading

_NUMERIC = {"NM", "SN"}
_CODED = {"CE", "CWE", "CNE", "ST", "TX", "IS"}
_LOINC_SYSTEMS = {"LN", "LOINC"}
_USABLE_RESULT_STATUS = {"F", "C", "P", "R", "A", ""}


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def _part(segment: hl7.Segment, field: int, component: int = 0) -> str:
    """Component ``component`` (0-based) of the first repetition of a field, or ``""``; a field
    without components is its own first component."""
    if len(segment) <= field:
        return ""
    value = segment[field]
    first = value[0] if not isinstance(value, str) and len(value) else value
    if isinstance(first, str):
        return first.strip() if component == 0 else ""
    return _text(first[component]) if component < len(first) else ""


def _hl7_time(text: str, what: str) -> datetime:
    try:
        return hl7.parse_datetime(text)  # type: ignore[no-any-return]
    except (ValueError, TypeError):
        raise IngestError(f"{what}: invalid HL7 time {text!r}") from None


def message_control_id(message: hl7.Message) -> str:
    """MSH-10, the message control id (empty when absent)."""
    try:
        return _text(message.segment("MSH")[10])
    except (KeyError, IndexError):
        return ""


def parse_message(text: str) -> hl7.Message:
    """Parse one HL7 v2 message; a message that is not HL7 v2 at all is rejected (AR)."""
    normalized = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
    if not normalized.startswith("MSH"):
        raise IngestError("message does not start with an MSH segment", reject=True)
    try:
        return hl7.parse(normalized)
    except Exception as exc:  # the library raises several kinds on malformed input
        raise IngestError(f"unparseable HL7 v2 message: {exc}", reject=True) from None


def parse_oru(config: MonitorConfig, message: hl7.Message, *, source: str = "hl7") -> Parsed:
    """Readings of an ORU^R01 message. Wrong message types are rejected (AR); missing patient,
    bad values or units are application errors (AE) naming the segment."""
    msh = message.segment("MSH")
    msg_type, trigger = _part(msh, 9, 0), _part(msh, 9, 1)
    if msg_type != "ORU" or trigger != "R01":
        raise IngestError(f"MSH-9: unsupported message type {msg_type}^{trigger}", reject=True)
    control = message_control_id(message)
    if not control:
        raise IngestError("MSH-10: message control id is required", reject=True)
    try:
        pid = message.segment("PID")
    except KeyError:
        raise IngestError("PID segment missing") from None
    patient_id = _part(pid, 3, 0)
    if not patient_id:
        raise IngestError("PID-3: patient identifier missing")
    ward = bed = None
    try:
        pv1 = message.segment("PV1")
        ward = _part(pv1, 3, 0) or None
        bed = _part(pv1, 3, 2) or None
    except KeyError:
        pass
    msh_time = _text(msh[7]) if len(msh) > 7 else ""
    obr_time = ""
    try:
        obr = message.segment("OBR")
        obr_time = _text(obr[7]) if len(obr) > 7 else ""
    except KeyError:
        pass
    readings: list[Reading] = []
    ignored: list[str] = []
    problems: list[str] = []
    try:
        obx_segments = list(message["OBX"])
    except KeyError:
        obx_segments = []
    if not obx_segments:
        raise IngestError("no OBX segment")
    for n, obx in enumerate(obx_segments, start=1):
        where = f"OBX[{n}]"
        try:
            reading = _obx_reading(
                config, obx, where=where, control=control, patient_id=patient_id,
                fallback_time=obr_time or msh_time, source=source, ignored=ignored,
            )  # fmt: skip
        except IngestError as exc:
            problems.append(exc.reason)
            continue
        if reading is not None:
            readings.append(reading)
    if problems:
        raise IngestError("; ".join(problems))
    return Parsed(tuple(readings), tuple(ignored), ward=ward, bed=bed)


def _obx_reading(
    config: MonitorConfig,
    obx: hl7.Segment,
    *,
    where: str,
    control: str,
    patient_id: str,
    fallback_time: str,
    source: str,
    ignored: list[str],
) -> Reading | None:
    value_type = _text(obx[2]) if len(obx) > 2 else ""
    code = _part(obx, 3, 0)
    system = _part(obx, 3, 2).upper()
    if not code:
        raise IngestError(f"{where}-3: observation identifier missing")
    if system and system not in _LOINC_SYSTEMS:
        ignored.append(f"{system}:{code}")
        return None
    if code not in config.by_loinc:
        ignored.append(code)
        return None
    status = _text(obx[11]) if len(obx) > 11 else ""
    if status not in _USABLE_RESULT_STATUS:
        ignored.append(f"{code} (status {status})")
        return None
    set_id = _text(obx[1]) if len(obx) > 1 else ""
    raw = obx[5] if len(obx) > 5 else None
    if raw is None or not _text(raw):
        raise IngestError(f"{where}-5: no value")
    if value_type in _NUMERIC:
        value: object = _text(raw)
    elif value_type in _CODED:
        value = _part(obx, 5, 0) if value_type in {"CE", "CWE", "CNE"} else _text(raw)
    else:
        raise IngestError(f"{where}-2: unsupported value type {value_type!r}")
    unit = _part(obx, 6, 0) or None
    when_text = (_text(obx[14]) if len(obx) > 14 else "") or fallback_time
    if not when_text:
        raise IngestError(f"{where}-14: no observation time (nor OBR-7 / MSH-7)")
    effective = _hl7_time(when_text, f"{where}-14")
    try:
        return make_reading(
            config,
            message_id=f"HL7/{control}/{set_id or where}",
            patient_id=patient_id,
            loinc=code,
            value=value,
            unit=unit,
            effective=effective,
            source=source,
        )
    except IngestError as exc:
        raise IngestError(f"{where}: {exc.reason}") from None


def ack(message: hl7.Message | None, code: str, *, reason: str | None = None) -> str:
    """The ACK for a message: MSA-1 ``AA``/``AE``/``AR``, MSA-2 its control id, and for a NACK
    the reason in MSA-3 and an ERR segment (HL7 v2.5 ERR-3 code 207/200, ERR-4 severity E,
    ERR-8 the text)."""
    now = datetime.now().strftime("%Y%m%d%H%M%S")
    control = message_control_id(message) if message is not None else ""
    sending = receiving = ("", "")
    version = "2.5"
    processing = "P"
    if message is not None:
        msh = message.segment("MSH")
        sending = (_text(msh[3]), _text(msh[4]))
        receiving = (_text(msh[5]), _text(msh[6]))
        version = (_text(msh[12]) if len(msh) > 12 else "") or version
        processing = (_text(msh[11]) if len(msh) > 11 else "") or processing
    clean = (reason or "").replace("|", "/").replace("^", " ").replace("~", " ")
    clean = clean.replace("\\", "/").replace("&", "+").replace("\r", " ")[:500]
    segments = [
        f"MSH|^~\\&|{receiving[0] or 'MEDAGENT'}|{receiving[1]}|{sending[0]}|{sending[1]}|{now}||"
        f"ACK^R01^ACK|{hl7.generate_message_control_id()}|{processing}|{version}",
        f"MSA|{code}|{control}" + (f"|{clean}" if reason else ""),
    ]
    if code != "AA":
        err = (
            "200^Unsupported message type^HL70357"
            if code == "AR"
            else "207^Application error^HL70357"
        )
        segments.append(f"ERR|||{err}|E||||{clean}")  # ERR-3 code, ERR-4 severity, ERR-8 text
    return "\r".join(segments) + "\r"
