"""CDS client authentication: the signed JWT CDS Hooks 2.0 requires (ES384/RS384, aud, exp, jti)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
from sqlalchemy.engine import Engine

from medagent.service.db import claim_jti
from medagent.service.problems import ProblemError, unauthorized

ALLOWED_ALGORITHMS = ("ES384", "RS384")  # CDS Hooks 2.0; `none` and HS* are never accepted
JWKS_TTL = 300.0
MAX_LIFETIME = 3600  # a client JWT valid for longer than an hour is refused

JwksFetcher = Callable[[str], dict[str, Any]]


def _fetch_jwks(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=5.0, follow_redirects=False, trust_env=False)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _keys_of(jwks: dict[str, Any]) -> dict[str, jwt.PyJWK]:
    out: dict[str, jwt.PyJWK] = {}
    for entry in jwks.get("keys", []):
        if not isinstance(entry, dict) or entry.get("kty") not in ("EC", "RSA"):
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue
        out[str(entry.get("kid", ""))] = key
    return out


class CdsVerifier:
    """Verifies CDS client JWTs against configured keys or allow-listed JWKS URLs (`jku`)."""

    def __init__(
        self,
        *,
        engine: Engine,
        jku_allow: Iterable[str] = (),
        jwks: dict[str, Any] | None = None,
        fetch: JwksFetcher = _fetch_jwks,
    ) -> None:
        self._engine = engine
        self._allow = frozenset(jku_allow)
        self._configured = _keys_of(jwks or {})
        self._fetch = fetch
        self._cache: dict[str, tuple[float, dict[str, jwt.PyJWK]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(
        cls, *, engine: Engine, jku_allow: Iterable[str], path: Path | None
    ) -> CdsVerifier:
        """A verifier with the keys of a JWKS file (if any)."""
        jwks = json.loads(path.read_text(encoding="utf-8")) if path else None
        return cls(engine=engine, jku_allow=jku_allow, jwks=jwks)

    def _jku_keys(self, url: str) -> dict[str, jwt.PyJWK]:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(url)
            if hit and now - hit[0] < JWKS_TTL:
                return hit[1]
        try:
            keys = _keys_of(self._fetch(url))
        except (httpx.HTTPError, ValueError) as exc:
            raise unauthorized(f"cannot read the JWKS at {url}") from exc
        with self._lock:
            self._cache[url] = (now, keys)
        return keys

    def verify(self, authorization: str | None, *, audience: list[str]) -> dict[str, Any]:
        """The claims of a valid client JWT from an `Authorization: Bearer` header; 401 if not."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("a CDS client JWT is required (Authorization: Bearer)")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("the client JWT is malformed") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise unauthorized(f"algorithm {alg!r} is not accepted; use ES384 or RS384")
        jku = header.get("jku")
        kid = str(header.get("kid", ""))
        if jku is not None:
            if jku not in self._allow:
                raise unauthorized("the jku of the client JWT is not on the allow-list")
            keys = self._jku_keys(str(jku))
        else:
            keys = self._configured
        key = keys.get(kid) or (next(iter(keys.values())) if len(keys) == 1 and not kid else None)
        if key is None:
            raise unauthorized("no trusted key for the client JWT")
        if key.algorithm_name != alg:
            raise unauthorized("the key of the client JWT does not match its algorithm")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=audience,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise unauthorized(f"the client JWT is not valid: {exc}") from exc
        if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME:
            raise unauthorized("the client JWT lives too long")
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC).replace(tzinfo=None)
        if not claim_jti(
            self._engine, issuer=str(claims["iss"]), jti=str(claims["jti"]), expires_at=expires
        ):
            raise ProblemError(
                401,
                "Unauthorized",
                detail="the client JWT was already used (jti replay)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return claims
