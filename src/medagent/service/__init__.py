"""The medagent web service: REST API, CDS Hooks, SMART launch, clinician and patient pages."""

from medagent.service.app import create_app
from medagent.service.settings import Settings

__all__ = ["Settings", "create_app"]
