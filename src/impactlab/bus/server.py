"""Start a ``nats-server`` with JetStream on loopback (tests, benchmarks, ``impactlab bus serve``)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from impactlab.errors import BusError

__all__ = ["NatsServer", "free_port"]


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
                 binary: str = "nats-server") -> None:  # fmt: skip
        exe = shutil.which(binary) or (binary if Path(binary).exists() else None)
        if exe is None:
            raise BusError(f"{binary!r} not found: install it (Debian: apt-get install nats-server)")
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
