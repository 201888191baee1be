"""Read a patient's data from a FHIR R4 REST server, with optional SMART backend-services auth.

Every URL (base, paging links, token endpoint) must pass the outbound policy
(:mod:`medagent.secure.outbound`): the hospital's own FHIR server is declared on-site, a server
elsewhere is reached through the hospital gateway. Redirects are not followed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime
from typing import Any

import httpx

from medagent.errors import Problem
from medagent.record.errors import RecordImportError, RemoteFHIRError
from medagent.record.fhirtime import format_instant, to_utc_naive
from medagent.record.importer import structural_problems, validate_resource
from medagent.record.models import ImportResult
from medagent.record.store import RecordStore
from medagent.secure.outbound import OutboundPolicy, guarded_client

# Patient-compartment types medagent reads by default (intersected with what the server offers).
DEFAULT_TYPES = (
    "Observation",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "Procedure",
    "AllergyIntolerance",
    "Encounter",
    "DiagnosticReport",
    "DocumentReference",
    "Immunization",
    "QuestionnaireResponse",
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
URL_SETTING = "remote FHIR server URL"


class SmartBackendAuth(httpx.Auth):
    """SMART backend services: a client-credentials grant with a signed JWT assertion.

    The assertion (RS384 or ES384, signed with the client's private key) is exchanged at the
    token endpoint for an access token, which is reused until shortly before it expires.
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        private_key: str | bytes,
        algorithm: str = "RS384",
        kid: str | None = None,
        scope: str = "system/*.read",
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm must be one of {ALGORITHMS}, not {algorithm!r}")
        self.token_url = token_url
        self.client_id = client_id
        self.private_key = private_key
        self.algorithm = algorithm
        self.kid = kid
        self.scope = scope
        self._token: str | None = None
        self._expires_at = 0.0

    def assertion(self) -> str:
        """A fresh signed client assertion (valid five minutes, unique `jti`)."""
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": now + 300,
            "iat": now,
            "jti": str(uuid.uuid4()),
        }
        headers = {"kid": self.kid} if self.kid else None
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm, headers=headers)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            },
            headers={"Accept": "application/json"},
        )

    def _store_token(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise RemoteFHIRError(
                f"token endpoint answered {response.status_code}: {response.text}"
            )
        body = response.json()
        token = body.get("access_token")
        if not isinstance(token, str):
            raise RemoteFHIRError("token endpoint gave no access_token")
        self._token = token
        self._expires_at = time.monotonic() + float(body.get("expires_in", 300)) - 30

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach a bearer token, fetching one first when none is valid; retry once on 401."""
        if self._token is None or time.monotonic() >= self._expires_at:
            self._store_token((yield self._token_request()))
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            self._store_token((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


def discover_token_url(
    base_url: str, *, client: httpx.Client | None = None, policy: OutboundPolicy | None = None
) -> str:
    """The token endpoint from the server's `.well-known/smart-configuration`."""
    rules = policy if policy is not None else OutboundPolicy.from_env()
    rules.check(base_url, setting=URL_SETTING)
    http = guarded_client(rules, setting=URL_SETTING, timeout=30.0, client=client)
    try:
        response = http.get(base_url.rstrip("/") + "/.well-known/smart-configuration")
    except httpx.HTTPError as exc:
        raise RemoteFHIRError(f"SMART configuration at {base_url}: {exc}") from exc
    finally:
        if client is None:
            http.close()
    if response.status_code != 200:
        raise RemoteFHIRError(f"no SMART configuration at {base_url} ({response.status_code})")
    url = response.json().get("token_endpoint")
    if not isinstance(url, str):
        raise RemoteFHIRError(f"SMART configuration at {base_url} has no token_endpoint")
    return url


class RemoteFHIR:
    """A FHIR R4 server read over HTTP: read, search with paging, a patient's resources.

    ``policy`` (by default the environment's) must allow the base URL, and is checked again on
    every request, so a `next` link or a token endpoint elsewhere is refused too.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        policy: OutboundPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy if policy is not None else OutboundPolicy.from_env()
        self.policy.check(self.base_url, setting=URL_SETTING)
        self.client = guarded_client(
            self.policy, setting=URL_SETTING, timeout=timeout, client=client
        )
        self.auth = auth

    def close(self) -> None:
        """Close the HTTP connections."""
        self.client.close()

    def __enter__(self) -> RemoteFHIR:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = self.client.get(
                url,
                params=params,
                auth=self.auth or httpx.USE_CLIENT_DEFAULT,
                headers={"Accept": "application/fhir+json"},
            )
        except httpx.HTTPError as exc:
            raise RemoteFHIRError(f"GET {url}: {exc}") from exc
        if response.status_code != 200:
            raise RemoteFHIRError(f"GET {response.url} answered {response.status_code}")
        body: dict[str, Any] = response.json()
        return body

    def metadata(self) -> dict[str, Any]:
        """The server's CapabilityStatement."""
        return self._get(f"{self.base_url}/metadata")

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any]:
        """One resource by type and id."""
        return self._get(f"{self.base_url}/{resource_type}/{resource_id}")

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[dict[str, Any]]:
        """Every matching resource, following the searchset Bundles' `next` links."""
        bundle = self._get(f"{self.base_url}/{resource_type}", params)
        while True:
            for entry in bundle.get("entry") or ():
                resource = entry.get("resource")
                if (entry.get("search") or {}).get("mode", "match") == "match" and resource:
                    yield resource
            next_url = next(
                (
                    link["url"]
                    for link in bundle.get("link") or ()
                    if link.get("relation") == "next"
                ),
                None,
            )
            if not next_url:
                return
            bundle = self._get(next_url)

    def searchable_types(self) -> set[str]:
        """Resource types the server says it can search."""
        types = set()
        for rest in self.metadata().get("rest") or ():
            for res in rest.get("resource") or ():
                codes = {i.get("code") for i in res.get("interaction") or ()}
                if "search-type" in codes:
                    types.add(str(res.get("type")))
        return types

    def patient_resources(
        self,
        patient_id: str,
        *,
        types: Iterable[str] = DEFAULT_TYPES,
        since: datetime | None = None,
        count: int = 200,
    ) -> list[dict[str, Any]]:
        """The Patient and their resources of these types (changed since a time, when given)."""
        offered = self.searchable_types()
        resources = [self.read("Patient", patient_id)]
        params = {"patient": patient_id, "_count": str(count)}
        if since is not None:
            params["_lastUpdated"] = "ge" + format_instant(to_utc_naive(since))
        for rtype in types:
            if rtype in offered:
                resources.extend(self.search(rtype, params))
        return resources


def import_remote(
    store: RecordStore,
    remote: RemoteFHIR,
    patient_id: str,
    *,
    since: datetime | None = None,
    types: Iterable[str] = DEFAULT_TYPES,
    validate: bool = True,
) -> ImportResult:
    """Copy a patient's resources from a remote server into the store, in one transaction."""
    resources = remote.patient_resources(patient_id, types=types, since=since)
    source = f"{remote.base_url}/Patient/{patient_id}"
    problems: list[Problem] = []
    for i, resource in enumerate(resources):
        where = f"{source}:{resource.get('resourceType')}/{resource.get('id')}[{i}]"
        check = validate_resource if validate else structural_problems
        problems.extend(check(resource, where))
    if problems:
        raise RecordImportError(source, problems)
    for resource in resources:
        _drop_server_meta(resource)
    return store.put(resources, source=source)


def _drop_server_meta(resource: dict[str, Any]) -> None:
    """Forget the remote server's version and time: the store keeps its own."""
    meta = resource.get("meta")
    if isinstance(meta, dict):
        meta.pop("versionId", None)
        meta.pop("lastUpdated", None)
        if not meta:
            del resource["meta"]
