"""Real servers for tests: the app under uvicorn on 127.0.0.1 (a thread, or a whole `inbox serve`
process), reached over real HTTP and websockets. Every server started here is stopped here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn

from inbox.web.websocket_protocol import FrameWritingProtocol

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


class _WakeableServer(uvicorn.Server):
    """uvicorn's Server, stopped at once by ThreadServer.stop() rather than on its next 0.1 s look
    at should_exit: a few hundred servers start and stop in a test run."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.wake = asyncio.Event()  # bound to the server's loop when first awaited there

    async def main_loop(self) -> None:
        # on_tick(0) also refreshes the Date header, as uvicorn's own loop does once a second.
        while not await self.on_tick(0):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=1.0)

    async def shutdown(self, sockets=None) -> None:
        # A page closed just before stop() leaves its websocket closing, and uvicorn's shutdown
        # would send that one a second close frame and fail (InvalidState): let such connections
        # finish first, for at most the tick uvicorn's own loop used to give them.
        deadline = time.monotonic() + 0.25
        while self.server_state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.server_state.connections or self.server_state.tasks or sockets:
            return await super().shutdown(sockets)  # connections still open: uvicorn's graceful path
        # Nothing open: uvicorn's shutdown without its fixed 0.1 s grace for connections to close.
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


class ThreadServer:
    """An ASGI app under uvicorn in a background thread with its own event loop."""

    def __init__(
        self, app, port: int | None = None, listener: socket.socket | None = None, plain_websockets: bool = False
    ) -> None:
        """`listener`: a bound socket to serve on instead of a new one on `port` (its options, such
        as a small send buffer, carry over to the connections it accepts). `plain_websockets`:
        uvicorn's own websocket protocol with compression, as another server would run the app,
        instead of `inbox serve`'s."""
        self.port = listener.getsockname()[1] if listener else (port or free_port())
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            # as `inbox serve` runs: frames uncompressed, a socket's waiting events in one write
            ws="websockets-sansio" if plain_websockets else FrameWritingProtocol,
            ws_per_message_deflate=plain_websockets,
        )
        self.server = _WakeableServer(config)
        sockets = [listener] if listener else None
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": sockets}, daemon=True)

    def call(self, coroutine, timeout: float = 30):
        """Runs a coroutine on the server's own event loop (where its database pool lives)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> ThreadServer:
        original_startup = self.server.startup

        async def startup(*args, **kwargs):
            self.loop = asyncio.get_running_loop()
            return await original_startup(*args, **kwargs)

        self.server.startup = startup
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if getattr(self, "loop", None) is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the server is gone
                self.loop.call_soon_threadsafe(self.server.wake.set)
        self.thread.join(timeout=15)


@dataclass
class ProcessServer:
    """A real `inbox serve` process (as an operator runs it), on its own port."""

    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ProcessServer:
        self.port = self.port or free_port()
        env = {**os.environ, **self.env}
        # Logs go to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "inbox.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
        )
        try:
            wait_until_up(self.url, process=self.process)
        except Exception:
            self.stop()
            raise
        return self

    def logs(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None


def start_together(*servers: ProcessServer) -> list[ProcessServer]:
    """Starts `inbox serve` processes side by side (each start is seconds of imports); if one does
    not come up, every one is stopped and its error raised."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(server.start) for server in servers]
    failed = [future.exception() for future in futures if future.exception() is not None]
    if failed:
        for server in servers:
            server.stop()
        raise failed[0]
    return list(servers)
