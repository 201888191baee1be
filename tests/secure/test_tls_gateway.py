"""Tests of the quantum-safe link and the gateway pair, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from OpenSSL import SSL

from medagent.secure.errors import LinkError
from medagent.secure.gateway import ComputeGateway, HospitalGateway
from medagent.secure.tls import (
    HYBRID_GROUP,
    LinkIdentity,
    LinkPolicy,
    accept,
    connect,
    generate_link_identity,
    make_context,
    recv_some,
    send_all,
)

SECRET = b"Patient/abc-123 Jane Q. Doe MRN 99887766"


@pytest.fixture(scope="module")
def ids(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LinkIdentity]:
    d = tmp_path_factory.mktemp("link")
    return {n: generate_link_identity(d, name=n) for n in ("hospital", "compute", "rogue")}


def _policies(ids: dict[str, LinkIdentity]) -> tuple[LinkPolicy, LinkPolicy]:
    hospital = LinkPolicy(
        identity=ids["hospital"], peer_pins=frozenset({ids["compute"].pin}), handshake_timeout=3
    )
    compute = LinkPolicy(
        identity=ids["compute"], peer_pins=frozenset({ids["hospital"].pin}), handshake_timeout=3
    )
    return hospital, compute


class _OneShotServer:
    """Accept one link connection with a policy and echo one message back."""

    def __init__(self, policy: LinkPolicy) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.policy = policy
        self.context = make_context(policy)
        self.error: BaseException | None = None
        self.group: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]  # type: ignore[no-any-return]

    def _run(self) -> None:
        sock, _ = self.listener.accept()
        try:
            conn = accept(sock, self.context, self.policy)
            self.group = conn.get_group_name()
            data = recv_some(conn, sock, timeout=3)
            send_all(conn, sock, data.upper(), timeout=3)
            conn.shutdown()
        except BaseException as exc:
            self.error = exc
        finally:
            sock.close()
            self.listener.close()

    def join(self) -> None:
        self.thread.join(timeout=10)


def test_handshake_is_tls13_hybrid_and_mutual(ids: dict[str, LinkIdentity]) -> None:
    hospital, compute = _policies(ids)
    server = _OneShotServer(compute)
    conn, sock = connect(server.address, hospital)
    try:
        assert conn.get_protocol_version_name() == "TLSv1.3"
        assert conn.get_group_name() == HYBRID_GROUP
        send_all(conn, sock, b"hello", timeout=3)
        assert recv_some(conn, sock, timeout=3) == b"HELLO"
    finally:
        sock.close()
    server.join()
    assert server.error is None
    assert server.group == HYBRID_GROUP


def test_classical_python_ssl_client_is_refused(ids: dict[str, LinkIdentity]) -> None:
    """Python's ssl (system OpenSSL, no ML-KEM) offers only classical groups: refused."""
    _, compute = _policies(ids)
    server = _OneShotServer(compute)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(server.address) as raw, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw).do_handshake()
    server.join()
    assert isinstance(server.error, LinkError)
    assert "handshake refused" in str(server.error)


def test_classical_pyopenssl_client_with_pinned_key_is_refused(
    ids: dict[str, LinkIdentity],
) -> None:
    """Even a correctly pinned client is refused if it offers only X25519."""
    hospital, compute = _policies(ids)
    server = _OneShotServer(compute)
    classical = replace(hospital, groups="X25519", required_group="x25519")
    with pytest.raises(LinkError, match="handshake refused"):
        connect(server.address, classical)
    server.join()
    assert isinstance(server.error, LinkError)


def test_client_refuses_a_classical_server(ids: dict[str, LinkIdentity]) -> None:
    hospital, compute = _policies(ids)
    server = _OneShotServer(replace(compute, groups="X25519", required_group="x25519"))
    with pytest.raises(LinkError, match="handshake refused"):
        connect(server.address, hospital)
    server.join()


def test_policy_check_after_handshake_catches_a_downgrade(ids: dict[str, LinkIdentity]) -> None:
    """A mis-configured group list that lets X25519 through is still refused after the handshake."""
    hospital, compute = _policies(ids)
    server = _OneShotServer(replace(compute, groups="X25519", required_group="x25519"))
    lax = replace(hospital, groups=f"{HYBRID_GROUP}:X25519")
    with pytest.raises(LinkError, match="'x25519' is not X25519MLKEM768"):
        connect(server.address, lax)
    server.join()


def test_unpinned_client_is_refused(ids: dict[str, LinkIdentity]) -> None:
    hospital, compute = _policies(ids)
    server = _OneShotServer(compute)
    rogue = replace(hospital, identity=ids["rogue"])
    with contextlib.suppress(LinkError):
        # TLS 1.3: the client may finish before it learns the server refused its certificate
        conn, sock = connect(server.address, rogue)
        with contextlib.suppress(SSL.Error, LinkError, OSError):
            send_all(conn, sock, b"x", timeout=3)
            recv_some(conn, sock, timeout=3)
        sock.close()
    server.join()
    assert isinstance(server.error, LinkError)
    assert "handshake refused" in str(server.error)


def test_unpinned_server_is_refused(ids: dict[str, LinkIdentity]) -> None:
    hospital, compute = _policies(ids)
    server = _OneShotServer(replace(compute, identity=ids["rogue"]))
    with pytest.raises(LinkError, match="handshake refused"):
        connect(server.address, hospital)
    server.join()


def test_client_without_certificate_is_refused(ids: dict[str, LinkIdentity]) -> None:
    _, compute = _policies(ids)
    server = _OneShotServer(compute)
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_verify(SSL.VERIFY_NONE)
    with socket.create_connection(server.address) as raw:
        conn = SSL.Connection(ctx, raw)
        conn.set_connect_state()
        with contextlib.suppress(SSL.Error):
            conn.do_handshake()
            conn.send(b"x")
            conn.recv(10)
    server.join()
    assert isinstance(server.error, LinkError)


class _Upstream(BaseHTTPRequestHandler):
    """A stand-in for the compute centre's LLM endpoint and FHIR server."""

    connections = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        reply = {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": body["messages"][-1]["content"]},
                    "finish_reason": "stop",
                }
            ],
        }
        self._send(json.dumps(reply).encode(), "application/json")

    def do_GET(self) -> None:
        if self.path.startswith("/fhir/Patient/"):
            pid = self.path.rsplit("/", 1)[1]
            data = json.dumps({"resourceType": "Patient", "id": pid, "filler": "x" * 1_000_000})
            self._send(data.encode(), "application/fhir+json")
        else:
            self.send_error(404)

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Tap:
    """A TCP relay between the gateways that records every byte crossing the wire."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.seen = bytearray()
        self._lock = threading.Lock()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        return self.listener.getsockname()[:2]  # type: ignore[no-any-return]

    def _serve(self) -> None:
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            b = socket.create_connection(self.target)
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._copy, args=(src, dst), daemon=True).start()

    def _copy(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    self.seen += data
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)


@pytest.fixture
def upstream() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_gateway_pair_carries_llm_request_and_fhir_read(
    ids: dict[str, LinkIdentity], upstream: ThreadingHTTPServer
) -> None:
    hospital, compute = _policies(ids)
    up_host, up_port = upstream.server_address[:2]
    with ComputeGateway(upstream=(str(up_host), up_port), policy=compute, idle_timeout=10) as cg:
        tap = _Tap(cg.address)
        with HospitalGateway(remote=tap.address, policy=hospital, idle_timeout=10) as hg:
            host, port = hg.address
            client = http.client.HTTPConnection(host, port, timeout=10)
            request = {
                "model": "qwen2.5-7b",
                "messages": [{"role": "user", "content": SECRET.decode()}],
            }
            client.request(
                "POST",
                "/v1/chat/completions",
                json.dumps(request),
                {"Content-Type": "application/json"},
            )
            reply = json.loads(client.getresponse().read())
            assert reply["choices"][0]["message"]["content"] == SECRET.decode()
            client.request("GET", "/fhir/Patient/abc-123")
            resp = client.getresponse()
            patient = json.loads(resp.read())
            assert resp.status == 200 and patient["id"] == "abc-123"
            assert len(patient["filler"]) == 1_000_000
            client.close()
    wire = bytes(tap.seen)
    assert len(wire) > 1_000_000
    assert wire[:1] == b"\x16"  # a TLS handshake record, not plaintext
    assert SECRET not in wire and b"abc-123" not in wire and b"qwen" not in wire


def test_hospital_gateway_sends_nothing_when_link_fails(
    ids: dict[str, LinkIdentity], upstream: ThreadingHTTPServer
) -> None:
    hospital, compute = _policies(ids)
    up_host, up_port = upstream.server_address[:2]
    rogue_compute = replace(compute, identity=ids["rogue"])  # not the pinned compute key
    with ComputeGateway(upstream=(str(up_host), up_port), policy=rogue_compute) as cg:
        tap = _Tap(cg.address)
        with HospitalGateway(remote=tap.address, policy=hospital) as hg:
            with socket.create_connection(hg.address, timeout=10) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\n\r\n" + SECRET)
                try:  # closed without an answer (RST because the request was never read)
                    answer = s.recv(100)
                except ConnectionResetError:
                    answer = b""
                assert answer == b""
            assert any("handshake refused" in r for r in hg.refusals)
        assert cg.forwarded == 0
    assert SECRET not in bytes(tap.seen)


def test_plaintext_listener_is_loopback_only(ids: dict[str, LinkIdentity]) -> None:
    hospital, _ = _policies(ids)
    with pytest.raises(LinkError, match="loopback"):
        HospitalGateway(remote=("127.0.0.1", 9), policy=hospital, listen=("0.0.0.0", 0))


def test_stalled_handshakes_time_out_and_are_bounded(ids: dict[str, LinkIdentity]) -> None:
    """A peer that connects and says nothing holds a slot only until the handshake timeout."""
    _, compute = _policies(ids)
    policy = replace(compute, handshake_timeout=1.5)
    with ComputeGateway(upstream=("127.0.0.1", 9), policy=policy, max_connections=1) as gw:
        stalled = socket.create_connection(gw.address, timeout=5)
        time.sleep(0.1)
        with socket.create_connection(gw.address, timeout=5) as second:
            assert second.recv(10) == b""  # refused at once: the only slot is taken
        assert stalled.recv(10) == b""  # closed by the handshake timeout
        stalled.close()
        assert "too many connections" in gw.refusals
        assert any("timed out" in r for r in gw.refusals)


@pytest.fixture(scope="module")
def fuzz_target(
    ids: dict[str, LinkIdentity],
) -> Iterator[tuple[ComputeGateway, list[bytes]]]:
    """A compute gateway whose upstream records whatever it would be sent."""
    _, compute = _policies(ids)
    received: list[bytes] = []
    sink = socket.create_server(("127.0.0.1", 0))

    def drain() -> None:
        while True:
            try:
                c, _ = sink.accept()
            except OSError:
                return
            with c:
                received.append(c.recv(65536))

    threading.Thread(target=drain, daemon=True).start()
    gw = ComputeGateway(
        upstream=sink.getsockname()[:2], policy=replace(compute, handshake_timeout=1.0)
    )
    gw.start()
    yield gw, received
    gw.stop()
    sink.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        # a TLS handshake record header followed by junk, to get deeper into the parser
        st.binary(max_size=2000).map(lambda b: b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b),
    )
)
def test_gateway_survives_random_input(
    data: bytes, fuzz_target: tuple[ComputeGateway, list[bytes]]
) -> None:
    gw, received = fuzz_target
    with socket.create_connection(gw.address, timeout=5) as s:
        with contextlib.suppress(OSError):
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while s.recv(65536):
                pass  # the gateway must close the connection (no hang): recv returns b""
    assert received == []  # nothing ever reaches the upstream
    assert gw._thread.is_alive()


def test_request_body_sent_after_a_pause_gets_through(
    ids: dict[str, LinkIdentity], upstream: ThreadingHTTPServer
) -> None:
    """Regression: after the handshake the hospital side blocked reading a TLS record that held
    no application data (a TLS 1.3 session ticket) and stopped forwarding the client's side, so
    a body written a moment after its headers never arrived (every such request timed out, and
    about 1 in 100 ordinary httpx requests did)."""
    hospital, compute = _policies(ids)
    up_host, up_port = upstream.server_address[:2]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "late body"}]})
    with (
        ComputeGateway(upstream=(str(up_host), up_port), policy=compute, idle_timeout=5) as cg,
        HospitalGateway(remote=cg.address, policy=hospital, idle_timeout=5) as hg,
    ):
        for _ in range(3):
            with socket.create_connection(hg.address, timeout=4) as s:
                s.sendall(
                    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                )
                time.sleep(0.3)
                s.sendall(body.encode())
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.0 200") and b"late body" in answer
        assert not hg.refusals and not cg.refusals
