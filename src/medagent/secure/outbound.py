"""Outbound policy: medagent connects only to the hospital gateway or to hosts declared on-site.

Everything medagent sends off-site (LLM requests, remote FHIR reads, referral packages) must
cross the quantum-safe link (:mod:`medagent.secure.gateway`). The link is only as good as the
configuration that routes traffic into it, so every HTTP client of medagent that may reach
another machine checks its URL here when it is built, and checks every request it sends
(redirects are not followed; paging links and token endpoints are checked like the first URL).

Settings (environment):

``MEDAGENT_GATEWAY_URL``
    The hospital-side gateway's local listening address(es), e.g. ``http://127.0.0.1:8443``;
    several separated by commas (one gateway per off-site service). Loopback only.
``MEDAGENT_ONSITE_HOSTS``
    Hosts on the hospital's own network that may be reached directly (the EHR's FHIR server, a
    local Ollama): comma-separated ``host``, ``host:port``, ``[v6]:port`` or an IP network such
    as ``10.20.0.0/16``. Names are compared as written (no DNS lookups).
``MEDAGENT_OUTBOUND``
    ``gateway`` (the default) or ``direct``. ``direct`` switches the policy off for development;
    every connection then logs a warning. Never the default; never use it with patient data.

Loopback addresses are not trusted implicitly: a local port forwarder would otherwise carry
plaintext off-site. A local model server is declared like any other on-site host.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import httpx

from medagent.errors import MedAgentError

log = logging.getLogger(__name__)

ENV_GATEWAY = "MEDAGENT_GATEWAY_URL"
ENV_ONSITE = "MEDAGENT_ONSITE_HOSTS"
ENV_MODE = "MEDAGENT_OUTBOUND"
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Mode = Literal["gateway", "direct"]


class OutboundPolicyError(MedAgentError, PermissionError):
    """A connection the outbound policy refuses, or a policy setting that cannot be used."""


@dataclass(frozen=True, slots=True)
class HostRule:
    """One on-site declaration: a host name or address (any port, or one port), or a network."""

    host: str = ""
    port: int | None = None
    network: IPNetwork | None = None

    def matches(self, host: str, port: int) -> bool:
        """Whether (host, port) of a URL is covered by this declaration."""
        if self.network is not None:
            address = _ip(host)
            return address is not None and address in self.network
        return self.host == host and (self.port is None or self.port == port)

    def __str__(self) -> str:
        if self.network is not None:
            return str(self.network)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    """Lower case, brackets off, IP literals in canonical form (``::0001`` → ``::1``)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    address = _ip(host)
    return str(address) if address is not None else host


def _host_port(url: httpx.URL | str) -> tuple[str, str, int]:
    """(scheme, normalised host, port with the scheme's default) of a URL."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise OutboundPolicyError(f"{url!r} is not a URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parsed.host:
        raise OutboundPolicyError(f"{url!s}: only http:// and https:// URLs with a host are used")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    return scheme, _normal_host(parsed.host), port


def parse_host_rule(text: str) -> HostRule:
    """Parse one ``MEDAGENT_ONSITE_HOSTS`` entry (host, host:port, [v6]:port or a network)."""
    entry = text.strip()
    if not entry:
        raise OutboundPolicyError(f"{ENV_ONSITE}: empty entry")
    if "/" in entry:
        try:
            return HostRule(network=ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise OutboundPolicyError(f"{ENV_ONSITE}: {entry!r}: {exc}") from None
    host, port = entry, None
    if entry.startswith("["):
        inner, _, rest = entry[1:].partition("]")
        host = inner
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise OutboundPolicyError(f"{ENV_ONSITE}: {entry!r}: write [ADDRESS]:PORT")
            port = int(rest[1:])
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
        if not port_text.isdigit():
            raise OutboundPolicyError(f"{ENV_ONSITE}: {entry!r}: the port must be a number")
        port = int(port_text)
    if not host or "://" in entry or any(c in host for c in " /?#@"):
        raise OutboundPolicyError(f"{ENV_ONSITE}: {entry!r}: write HOST, HOST:PORT or a network")
    if port is not None and not 0 < port < 65536:
        raise OutboundPolicyError(f"{ENV_ONSITE}: {entry!r}: port out of range")
    return HostRule(host=_normal_host(host), port=port)


def parse_gateway(url: str) -> tuple[str, int]:
    """Parse one ``MEDAGENT_GATEWAY_URL`` entry; the gateway must listen on loopback."""
    _scheme, host, port = _host_port(url.strip())
    address = _ip(host)
    if host != "localhost" and (address is None or not address.is_loopback):
        raise OutboundPolicyError(
            f"{ENV_GATEWAY}={url!r}: the hospital gateway listens on loopback "
            "(127.0.0.1 or ::1); a host elsewhere on the hospital network belongs in "
            f"{ENV_ONSITE}"
        )
    return host, port


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where medagent may connect: the hospital gateway(s), declared on-site hosts, or (dev) all."""

    gateways: frozenset[tuple[str, int]] = frozenset()
    onsite: tuple[HostRule, ...] = ()
    mode: Mode = "gateway"

    @classmethod
    def build(
        cls,
        *,
        gateways: Iterable[str] = (),
        onsite: Iterable[str] = (),
        mode: str = "gateway",
    ) -> OutboundPolicy:
        """A policy from the same strings the environment settings hold."""
        if mode not in ("gateway", "direct"):
            raise OutboundPolicyError(f"{ENV_MODE}={mode!r}: use gateway (default) or direct")
        return cls(
            gateways=frozenset(parse_gateway(g) for g in gateways),
            onsite=tuple(parse_host_rule(h) for h in onsite),
            mode="direct" if mode == "direct" else "gateway",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OutboundPolicy:
        """From MEDAGENT_GATEWAY_URL, MEDAGENT_ONSITE_HOSTS and MEDAGENT_OUTBOUND."""
        env = os.environ if environ is None else environ
        return cls.build(
            gateways=_split(env.get(ENV_GATEWAY)),
            onsite=_split(env.get(ENV_ONSITE)),
            mode=(env.get(ENV_MODE) or "gateway").strip().lower(),
        )

    def route(self, url: httpx.URL | str) -> str:
        """How a connection to ``url`` is allowed ("gateway", "on-site" or "direct"), or refuse."""
        _scheme, host, port = _host_port(url)
        if (host, port) in self.gateways:
            return "gateway"
        if any(rule.matches(host, port) for rule in self.onsite):
            return "on-site"
        if self.mode == "direct":
            log.warning(
                "%s=direct: connecting to %s:%s WITHOUT the quantum-safe gateway; "
                "development only, never with patient data",
                ENV_MODE,
                host,
                port,
            )
            return "direct"
        raise OutboundPolicyError(self._refusal(host, port))

    def check(self, url: httpx.URL | str, *, setting: str) -> None:
        """Refuse ``url`` unless allowed; ``setting`` names the option that chose the URL."""
        try:
            self.route(url)
        except OutboundPolicyError as exc:
            raise OutboundPolicyError(f"{setting}: {exc}") from None

    def request_hook(self, setting: str) -> Callable[[httpx.Request], None]:
        """An httpx ``request`` event hook checking every request (auth, paging, retries)."""

        def hook(request: httpx.Request) -> None:
            self.check(request.url, setting=setting)

        return hook

    def _refusal(self, host: str, port: int) -> str:
        where = f"{host}:{port}"
        gateways = ", ".join(f"{h}:{p}" for h, p in sorted(self.gateways)) or "none configured"
        onsite = ", ".join(str(r) for r in self.onsite) or "none declared"
        return (
            f"{where} is neither the hospital gateway ({ENV_GATEWAY}: {gateways}) nor a host "
            f"declared on-site ({ENV_ONSITE}: {onsite}). Off-site traffic must cross the "
            f"quantum-safe link: run `medagent gateway run hospital …`, point this setting at "
            f"its local address and list that address in {ENV_GATEWAY}; or, if {where} is on "
            f"the hospital network, add it to {ENV_ONSITE}."
        )


def guarded_client(
    policy: OutboundPolicy, *, setting: str, timeout: float, client: httpx.Client | None = None
) -> httpx.Client:
    """An httpx client that never follows redirects and checks every request against ``policy``.

    Proxy settings from the environment (``HTTPS_PROXY`` …) are ignored: a proxy would carry the
    request somewhere the policy never saw. A client passed in is configured the same way (its
    redirects are switched off and the check is added to its request hooks) and must have been
    made with ``trust_env=False``, so a caller cannot hand in a way around the policy.
    """
    if client is not None and client.trust_env:
        raise OutboundPolicyError(
            f"{setting}: pass an httpx.Client(trust_env=False); environment proxies would "
            "bypass the outbound policy"
        )
    http = client if client is not None else httpx.Client(timeout=timeout, trust_env=False)
    http.follow_redirects = False
    hooks = http.event_hooks
    hooks["request"] = [policy.request_hook(setting), *hooks.get("request", [])]
    http.event_hooks = hooks
    return http
