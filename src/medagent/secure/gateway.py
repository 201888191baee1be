"""The gateway pair: hospital side (local plaintext in), compute side (plaintext out to upstream).

::

    app ──plain──▶ HospitalGateway ══ TLS 1.3 X25519MLKEM768, ML-DSA-65 pins ══▶ ComputeGateway
                   (127.0.0.1 only)                                            ──plain──▶ upstream

Each accepted connection is forwarded by one thread running a select() loop, with TLS 1.3
half-close (close_notify) mapped to TCP half-close, so request/response protocols such as HTTP
work unchanged. A connection whose link cannot be established is closed without a byte reaching
the other side; the reason is kept in :attr:`_Gateway.refusals`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import socket
import threading
from abc import ABC, abstractmethod
from collections import deque
from types import TracebackType

from OpenSSL import SSL

from medagent.secure.errors import LinkError
from medagent.secure.tls import LinkPolicy, accept, connect, make_context, recv_ready, send_all

log = logging.getLogger(__name__)
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_MAX_CONNECTIONS = 256


def _close_notify(conn: SSL.Connection) -> None:
    with contextlib.suppress(SSL.Error, OSError):
        conn.shutdown()


def pump(
    plain: socket.socket,
    conn: SSL.Connection,
    tls_sock: socket.socket,
    *,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> tuple[int, int]:
    """Forward bytes both ways until both directions are closed; return (plain→tls, tls→plain).

    The TLS side is read without waiting before every select(): OpenSSL may hold decrypted data
    the socket no longer shows, and a readable socket may carry no application data at all (a
    TLS 1.3 NewSessionTicket). Blocking on it there stalled the plaintext direction: a request
    whose body followed its headers a moment later never got through.
    """
    plain.settimeout(idle_timeout)
    plain_open = tls_open = True
    up = down = 0
    while plain_open or tls_open:
        moved = False
        if tls_open:
            try:
                data = recv_ready(conn)
            except SSL.Error as exc:
                raise LinkError(f"TLS error on the link: {exc}") from exc
            if data is not None:
                moved = True
                if data:
                    plain.sendall(data)
                    down += len(data)
                else:
                    tls_open = False
                    with contextlib.suppress(OSError):
                        plain.shutdown(socket.SHUT_WR)
        watch = [s for s, o in ((plain, plain_open), (tls_sock, tls_open)) if o]
        if not watch:
            break
        ready, _, _ = select.select(watch, [], [], 0 if moved else idle_timeout)
        if not ready and not moved:
            raise LinkError("link idle timeout")
        if plain in ready:
            data = plain.recv(65536)
            if data:
                send_all(conn, tls_sock, data, timeout=idle_timeout)
                up += len(data)
            else:
                plain_open = False
                _close_notify(conn)
        # a readable TLS socket is read at the top of the loop
    return up, down


class _Gateway(ABC):
    """A listening socket with one forwarding thread per connection."""

    def __init__(
        self, listen: tuple[str, int], *, idle_timeout: float, max_connections: int
    ) -> None:
        self._listener = socket.create_server(listen, backlog=64)
        self._idle_timeout = idle_timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=type(self).__name__)
        self._lock = threading.Lock()
        self.forwarded = 0
        self.refusals: deque[str] = deque(maxlen=100)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) this gateway listens on."""
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Start accepting connections in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; connections already forwarding finish on their own."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> _Gateway:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                # every slot busy (possibly peers stalling handshakes): refuse, do not queue
                self._refuse("too many connections")
                client.close()
                continue
            threading.Thread(target=self._guarded, args=(client,), daemon=True).start()

    def _refuse(self, reason: str) -> None:
        with self._lock:
            self.refusals.append(reason)
        log.warning("%s: connection closed: %s", type(self).__name__, reason)

    def _guarded(self, client: socket.socket) -> None:
        try:
            self._handle(client)
        except (LinkError, OSError, SSL.Error) as exc:
            self._refuse(str(exc))
        finally:
            client.close()
            self._slots.release()

    @abstractmethod
    def _handle(self, client: socket.socket) -> None:
        """Serve one accepted connection (each side forwards in its own direction)."""


class HospitalGateway(_Gateway):
    """Accepts local plaintext connections; carries each over a new PQ link to the compute side."""

    def __init__(
        self,
        *,
        remote: tuple[str, int],
        policy: LinkPolicy,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        allow_non_loopback: bool = False,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if not allow_non_loopback and not ipaddress.ip_address(listen[0]).is_loopback:
            raise LinkError("the plaintext side listens on loopback only unless explicitly allowed")
        super().__init__(listen, idle_timeout=idle_timeout, max_connections=max_connections)
        self._remote = remote
        self._policy = policy
        self._context = make_context(policy)

    def _handle(self, client: socket.socket) -> None:
        conn, tls_sock = connect(self._remote, self._policy, self._context)
        try:
            pump(client, conn, tls_sock, idle_timeout=self._idle_timeout)
            with self._lock:
                self.forwarded += 1
        finally:
            tls_sock.close()


class ComputeGateway(_Gateway):
    """Accepts PQ links and forwards each, once the policy is met, to a local plaintext upstream."""

    def __init__(
        self,
        *,
        upstream: tuple[str, int],
        policy: LinkPolicy,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(listen, idle_timeout=idle_timeout, max_connections=max_connections)
        self._upstream = upstream
        self._policy = policy
        self._context = make_context(policy)

    def _handle(self, client: socket.socket) -> None:
        conn = accept(client, self._context, self._policy)
        # Only an authenticated, hybrid-keyed peer gets this far: now open the upstream.
        upstream = socket.create_connection(self._upstream, timeout=self._idle_timeout)
        try:
            pump(upstream, conn, client, idle_timeout=self._idle_timeout)
            with self._lock:
                self.forwarded += 1
        finally:
            upstream.close()
