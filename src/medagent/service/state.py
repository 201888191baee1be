"""What every request shares: settings, record store, audit log, authorizer, limits, caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from medagent.record.audited import AuditedRecordStore
    from medagent.secure.access import Authorizer, LoginService, RateLimiter
    from medagent.secure.audit import AuditLog
    from medagent.service.cds_auth import CdsVerifier
    from medagent.service.settings import Settings


@dataclass
class ServiceState:
    """The long-lived objects of one app instance."""

    settings: Settings
    store: AuditedRecordStore
    audit: AuditLog
    authorizer: Authorizer
    login: LoginService | None
    link_limiter: RateLimiter
    cds: CdsVerifier
    smart_sessions: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def engine(self) -> Engine:
        """The database engine of the store (the service tables live beside the record)."""
        return self.store.engine


def get_state(connection: HTTPConnection) -> ServiceState:
    """The app's shared state (for HTTP requests and websockets alike)."""
    state: ServiceState = connection.app.state.svc
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]
