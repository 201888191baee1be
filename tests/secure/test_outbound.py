"""The outbound policy: only the hospital gateway or declared on-site hosts, checked everywhere."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from medagent.llm.client import ChatClient, LLMError
from medagent.secure.outbound import OutboundPolicy, OutboundPolicyError, parse_host_rule

POLICY = OutboundPolicy.build(
    gateways=["http://127.0.0.1:8443", "http://[::1]:9443"],
    onsite=["ehr.hospital.lan", "llm.hospital.lan:11434", "10.20.0.0/16", "[fd00::5]:443"],
)


@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("http://127.0.0.1:8443/v1", "gateway"),  # the hospital gateway
        ("http://[::1]:9443/fhir", "gateway"),  # a second gateway, IPv6 loopback
        ("https://EHR.Hospital.LAN/fhir", "on-site"),  # declared name, any case, any port
        ("http://ehr.hospital.lan:8080/fhir", "on-site"),  # a name without port: every port
        ("http://llm.hospital.lan:11434/v1", "on-site"),  # name with its port
        ("http://10.20.3.4:8080/fhir", "on-site"),  # inside a declared network
        ("https://[fd00::5]/fhir", "on-site"),  # IPv6 with the default port 443
    ],
)
def test_allowed_routes(url: str, route: str) -> None:
    assert POLICY.route(url) == route


@pytest.mark.parametrize(
    "url",
    [
        "https://api.deepseek.com/v1",  # a hosted LLM, directly
        "http://127.0.0.1:8444/v1",  # loopback, but not the gateway's port
        "http://localhost:8443/v1",  # names are compared as written, no DNS
        "http://llm.hospital.lan:8000/v1",  # declared with another port
        "http://10.21.0.1/fhir",  # outside the declared network
        "http://ehr.hospital.lan.evil.example/fhir",  # a suffix trick
        "http://[fd00::5]:8443/",  # declared with port 443 only
    ],
)
def test_refused_routes(url: str) -> None:
    with pytest.raises(OutboundPolicyError):
        POLICY.route(url)


def test_refusal_names_the_setting_and_how_to_fix_it() -> None:
    with pytest.raises(OutboundPolicyError) as info:
        POLICY.check("https://api.deepseek.com/v1", setting="MEDAGENT_LLM_URL")
    message = str(info.value)
    assert message.startswith("MEDAGENT_LLM_URL: api.deepseek.com:443")
    assert "MEDAGENT_GATEWAY_URL" in message and "MEDAGENT_ONSITE_HOSTS" in message
    assert "medagent gateway run hospital" in message


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"MEDAGENT_GATEWAY_URL": "http://10.0.0.5:8443"}, "loopback"),  # not a local gateway
        ({"MEDAGENT_GATEWAY_URL": "ftp://127.0.0.1:21"}, "http"),  # not HTTP
        ({"MEDAGENT_ONSITE_HOSTS": "http://ehr.lan"}, "HOST"),  # a URL, not a host
        ({"MEDAGENT_ONSITE_HOSTS": "ehr.lan:http"}, "port"),
        ({"MEDAGENT_ONSITE_HOSTS": "10.0.0.0/40"}, "10.0.0.0/40"),
        ({"MEDAGENT_OUTBOUND": "off"}, "MEDAGENT_OUTBOUND"),  # only gateway or direct
    ],
)
def test_bad_settings_are_refused(env: dict[str, str], match: str) -> None:
    with pytest.raises(OutboundPolicyError, match=match):
        OutboundPolicy.from_env(env)


def test_default_allows_nothing() -> None:
    policy = OutboundPolicy.from_env({})
    for url in ("http://127.0.0.1:8000/v1", "https://example.org/fhir"):
        with pytest.raises(OutboundPolicyError):
            policy.route(url)


def test_direct_mode_is_explicit_and_loud(caplog: pytest.LogCaptureFixture) -> None:
    policy = OutboundPolicy.from_env({"MEDAGENT_OUTBOUND": "direct"})
    with caplog.at_level(logging.WARNING, logger="medagent.secure.outbound"):
        assert policy.route("https://api.deepseek.com/v1") == "direct"
    assert "WITHOUT the quantum-safe gateway" in caplog.text


def test_host_rule_text_round_trips() -> None:
    for text in ("ehr.lan", "ehr.lan:8080", "[fd00::5]:443", "10.20.0.0/16"):
        assert str(parse_host_rule(text)) == text


def test_llm_client_refuses_a_direct_url_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDAGENT_GATEWAY_URL", "MEDAGENT_ONSITE_HOSTS", "MEDAGENT_OUTBOUND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEDAGENT_LLM_URL", "https://api.deepseek.com/v1")
    monkeypatch.setenv("MEDAGENT_LLM_MODEL", "deepseek-chat")
    with pytest.raises(OutboundPolicyError, match=r"^MEDAGENT_LLM_URL: "):
        ChatClient.from_env()
    monkeypatch.setenv("MEDAGENT_GATEWAY_URL", "http://127.0.0.1:8443")
    monkeypatch.setenv("MEDAGENT_LLM_URL", "http://127.0.0.1:8443/v1")
    assert ChatClient.from_env().model == "deepseek-chat"


class _Redirector(BaseHTTPRequestHandler):
    """An on-site endpoint that tries to send the request elsewhere."""

    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.send_response(307)
        self.send_header("Location", "https://api.deepseek.com/v1/chat/completions")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def redirector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_llm_client_does_not_follow_redirects(redirector: str) -> None:
    port = int(httpx.URL(redirector).port or 0)
    policy = OutboundPolicy.build(onsite=[f"127.0.0.1:{port}"])
    client = ChatClient(redirector, "m", policy=policy, timeout=5)
    with pytest.raises(LLMError, match="307: redirects are not followed"):
        client.chat_json([{"role": "user", "content": "x"}], schema={"type": "object"})
    assert _Redirector.hits == 1


def test_llm_client_ignores_environment_proxies(
    redirector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy from the environment would carry the request where the policy never looked."""
    monkeypatch.setenv("HTTP_PROXY", "http://203.0.113.9:3128")
    monkeypatch.setenv("NO_PROXY", "")
    port = int(httpx.URL(redirector).port or 0)
    client = ChatClient(
        redirector, "m", policy=OutboundPolicy.build(onsite=[f"127.0.0.1:{port}"]), timeout=5
    )
    before = _Redirector.hits
    with pytest.raises(LLMError, match="307"):  # reached the on-site server, not the proxy
        client.chat_json([{"role": "user", "content": "x"}], schema={"type": "object"})
    assert _Redirector.hits == before + 1
