"""Service settings, read from the environment (database URL, keys, base URL, trusted clients)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BASE_URL = "http://127.0.0.1:8000"


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is configured with; `from_env` reads `MEDAGENT_*` variables.

    * ``database_url`` — the record store and the service tables (`MEDAGENT_DB`);
    * ``base_url`` — the public URL of the service, used as the CDS JWT audience and in links
      (`MEDAGENT_BASE_URL`);
    * ``secret`` — the key that signs session tokens and patient links (`MEDAGENT_SECRET`;
      a random one per process when unset, so links and sessions die with the process);
    * ``cds_jku_allow`` — JWKS URLs CDS clients may point to with `jku` (`MEDAGENT_CDS_JKU`);
    * ``cds_jwks_file`` — a JWKS file of CDS client keys configured here (`MEDAGENT_CDS_JWKS`);
    * ``users_file`` — `name:role:argon2-hash` lines for password login (`MEDAGENT_USERS`);
    * ``audit_path`` — the audit log (SQLite, `MEDAGENT_AUDIT`; default: medagent-audit.db in the
      user data directory, the same log as the command line's);
    * ``smart_client_id`` — the client id of the SMART app (`MEDAGENT_SMART_CLIENT_ID`);
    * ``smart_iss_allow`` — FHIR servers (`iss`) allowed to launch the app (`MEDAGENT_SMART_ISS`);
    * ``cds_fhir_allow`` — FHIR servers a hook may send as `fhirServer` (`MEDAGENT_CDS_FHIR`);
      without any, the service reads only the prefetch (it never fetches an arbitrary URL);
    * ``monitor`` — mount the vital-sign monitor's routers (`MEDAGENT_MONITOR=0` to leave out).
    """

    database_url: str | None = None
    base_url: str = DEFAULT_BASE_URL
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    cds_jku_allow: tuple[str, ...] = ()
    cds_jwks_file: Path | None = None
    users_file: Path | None = None
    audit_path: Path | None = None
    smart_client_id: str = "medagent"
    smart_iss_allow: tuple[str, ...] = ()
    cds_fhir_allow: tuple[str, ...] = ()
    link_ttl_max_minutes: int = 7 * 24 * 60
    session_minutes: int = 8 * 60
    link_rate_per_minute: int = 30
    monitor: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from `MEDAGENT_*` environment variables (defaults where unset)."""
        e = dict(os.environ if env is None else env)
        secret = e.get("MEDAGENT_SECRET")
        jwks = e.get("MEDAGENT_CDS_JWKS")
        users = e.get("MEDAGENT_USERS")
        audit = e.get("MEDAGENT_AUDIT")
        return cls(
            database_url=e.get("MEDAGENT_DB") or None,
            base_url=(e.get("MEDAGENT_BASE_URL") or DEFAULT_BASE_URL).rstrip("/"),
            secret=secret.encode() if secret else secrets.token_bytes(32),
            cds_jku_allow=_split(e.get("MEDAGENT_CDS_JKU")),
            cds_jwks_file=Path(jwks) if jwks else None,
            users_file=Path(users) if users else None,
            audit_path=Path(audit) if audit else None,
            smart_client_id=e.get("MEDAGENT_SMART_CLIENT_ID") or "medagent",
            smart_iss_allow=_split(e.get("MEDAGENT_SMART_ISS")),
            cds_fhir_allow=_split(e.get("MEDAGENT_CDS_FHIR")),
            monitor=e.get("MEDAGENT_MONITOR", "1") not in ("0", "false", "no"),
        )
