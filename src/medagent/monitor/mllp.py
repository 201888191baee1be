"""MLLP (HL7 v2 minimal lower layer protocol) server and client on asyncio: framing and replies."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

START = b"\x0b"
END = b"\x1c\x0d"
MAX_MESSAGE = 1 << 20  # a frame larger than this is refused and the connection closed


def frame(message: str) -> bytes:
    """One message wrapped in MLLP start and end blocks."""
    return START + message.encode("utf-8") + END


async def read_frame(reader: asyncio.StreamReader) -> str | None:
    """The next framed message, skipping bytes outside frames; None at end of stream."""
    while True:
        first = await reader.read(1)
        if not first:
            return None
        if first == START:
            break
    try:
        data = await reader.readuntil(END)
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("MLLP frame too large") from None
    return data[: -len(END)].decode("utf-8", errors="replace")


Handler = Callable[[str], str]


class MLLPServer:
    """An MLLP listener on a background thread: each framed message goes to ``handler`` (which
    stores it and returns the ACK text) and the reply is sent back framed, in order."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    message = await read_frame(reader)
                except ValueError:
                    break
                if message is None:
                    break
                # The handler writes to the database; run it off the event loop.
                reply = await asyncio.to_thread(self.handler, message)
                writer.write(frame(reply))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(
            self._client, self.host, self.port, limit=MAX_MESSAGE
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        async with self._server:
            await self._server.serve_forever()

    def start(self) -> MLLPServer:
        """Start listening; ``port`` holds the bound port when this returns."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._serve())

        self._thread = threading.Thread(target=run, name="mllp", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("MLLP server did not start")
        return self

    def stop(self) -> None:
        """Stop listening and wait for the thread."""
        if self._loop is not None and self._server is not None:
            loop, server = self._loop, self._server

            def close() -> None:
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            loop.call_soon_threadsafe(close)
        if self._thread is not None:
            self._thread.join(10)


def send(
    messages: list[str], *, host: str = "127.0.0.1", port: int, timeout: float = 10
) -> list[str]:
    """Send messages over one MLLP connection and return the replies (a small blocking client)."""

    async def run() -> list[str]:
        reader, writer = await asyncio.open_connection(host, port, limit=MAX_MESSAGE)
        replies: list[str] = []
        try:
            for message in messages:
                writer.write(frame(message))
                await writer.drain()
                reply = await asyncio.wait_for(read_frame(reader), timeout)
                if reply is None:
                    raise ConnectionError("connection closed before the ACK")
                replies.append(reply)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return replies

    return asyncio.run(run())
