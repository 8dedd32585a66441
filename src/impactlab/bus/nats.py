"""The NATS JetStream bus: one file-backed stream, durable consumers, de-duplication by message id.

Consumers are push consumers with ``AckPolicy.ALL`` read through a plain subscription on their delivery
subject (the fast path of ``nats-py``: about ten times the rate of its pull ``fetch``), with flow control: the
server pauses when the consumer has not taken what was sent, instead of overrunning the connection and cutting
it as a slow consumer (which would leave the unacknowledged messages waiting for redelivery). A durable
consumer that subscribes again (a restarted engine) is re-created at its acknowledgement floor + 1, so it
gets, in order, exactly what it had not acknowledged, without waiting for the server's redelivery timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from typing import Any

from impactlab.bus._base import Bus, Message, Subscription, check_subject, check_subscription
from impactlab.errors import BusError

__all__ = ["NatsBus"]

DEFAULT_SUBJECTS = ("md.>", "hedge.>", "orders.>", "fills.>", "ctl.>")


def _stream_seq(reply: str) -> int:
    """The stream sequence in a JetStream ack subject (``$JS.ACK.<stream>.<consumer>.<n>.<sseq>...`` or the
    12-token form with domain and account hash)."""
    t = reply.split(".")
    return int(t[5] if len(t) == 9 else t[7])


class _NatsSubscription(Subscription):
    def __init__(self, bus: NatsBus, durable: str | None) -> None:
        self.bus, self.durable = bus, durable
        self.queue: deque[Any] = deque()
        self.ready = asyncio.Event()
        self.sub: Any = None
        self._last_ack: str | None = None

    async def _on_msg(self, msg: Any) -> None:
        self.queue.append(msg)
        self.ready.set()

    async def next(self, timeout_s: float = 1.0) -> Message | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            if not self.queue:
                self.ready.clear()
                try:
                    await asyncio.wait_for(self.ready.wait(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    return None
            m = self.queue.popleft()
            hdr = m.headers or {}
            if not m.data and hdr.get("Status") == "100":
                # a flow-control request (answered now: everything delivered before it has been taken) or an
                # idle heartbeat naming a flow-control reply the server is still waiting for
                reply = m.reply or hdr.get("Nats-Consumer-Stalled")
                if reply:
                    await self.bus.nc.publish(reply, b"")
                continue
            seq = _stream_seq(m.reply) if m.reply else 0
            return _NatsMessage(m.subject, m.data, seq, hdr.get("Nats-Msg-Id"), False, m.reply)

    async def ack(self, msg: Message) -> None:
        reply = getattr(msg, "reply", None)
        if self.durable is not None and reply:
            await self.bus.nc.publish(reply, b"+ACK")
            self._last_ack = reply

    async def close(self) -> None:
        # acknowledgements are fire-and-forget on the hot path; before the consumer lets go, the last one is
        # sent again and waited for (ack-all: every earlier one is then recorded), so a consumer that binds
        # next resumes after it even on a loaded server
        last = self._last_ack
        if last is not None:
            with contextlib.suppress(Exception):
                await self.bus.nc.request(last, b"+ACK", timeout=2.0)
            self._last_ack = None
        if self.sub is not None:
            await self.sub.unsubscribe()
            self.sub = None
        await self.bus.nc.flush()


class _NatsMessage(Message):
    def __init__(self, subject: str, data: bytes, seq: int, msg_id: str | None, redelivered: bool,
                 reply: str) -> None:  # fmt: skip
        super().__init__(subject, data, seq, msg_id, redelivered)
        object.__setattr__(self, "reply", reply)


class NatsBus(Bus):
    """A JetStream stream ``stream`` on the server at ``url`` (see the module doc); build with
    :meth:`connect`."""

    def __init__(self, nc: Any, js: Any, stream: str) -> None:
        self.nc, self.js, self.stream = nc, js, stream

    @classmethod
    async def connect(
        cls,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "IMPACTLAB",
        subjects: Sequence[str] = DEFAULT_SUBJECTS,
        duplicate_window_s: float = 3600.0,
    ) -> NatsBus:
        """Connect and make sure the stream exists (file storage, a de-duplication window of
        ``duplicate_window_s``)."""
        import nats
        from nats.errors import NoServersError
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError

        try:
            nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=5, pending_size=64 << 20)
        except (NoServersError, OSError, TimeoutError) as exc:
            raise BusError(f"cannot reach a NATS server at {url}: {exc}") from exc
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=stream, subjects=list(subjects), storage=StorageType.FILE,
                                             duplicate_window=duplicate_window_s))  # fmt: skip
        return cls(nc, js, stream)

    async def publish(self, subject: str, data: bytes, *, msg_id: str | None = None) -> int:
        check_subject(subject)
        headers = {"Nats-Msg-Id": msg_id} if msg_id is not None else None
        ack = await self.js.publish(subject, data, headers=headers, stream=self.stream)
        return int(ack.seq)

    async def publish_nowait(self, subject: str, data: bytes) -> None:
        await self.nc.publish(subject, data)

    async def flush(self) -> None:
        await self.nc.flush()

    async def subscribe(
        self, subject: str, *, durable: str | None = None, start_seq: int | None = None
    ) -> Subscription:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        check_subscription(subject, durable, start_seq)
        start = start_seq
        if durable is not None:
            try:
                info = await self.js.consumer_info(self.stream, durable)
                if info.config.filter_subject != subject:
                    raise BusError(f"durable consumer {durable!r} follows {info.config.filter_subject!r}, not "
                                   f"{subject!r}")  # fmt: skip
                start = int(info.ack_floor.stream_seq) + 1 if info.ack_floor else 1
                await self.js.delete_consumer(self.stream, durable)
            except NotFoundError:
                pass
        sub = _NatsSubscription(self, durable)
        inbox = self.nc.new_inbox()
        cfg = ConsumerConfig(
            durable_name=durable, deliver_subject=inbox, filter_subject=subject,
            ack_policy=AckPolicy.ALL if durable else AckPolicy.NONE, max_ack_pending=-1 if not durable else 1 << 20,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.ALL, opt_start_seq=start,
            ack_wait=3600.0, flow_control=True, idle_heartbeat=5.0,
        )  # fmt: skip
        sub.sub = await self.nc.subscribe(inbox, cb=sub._on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        await self.js.add_consumer(self.stream, cfg)
        return sub

    async def last_seq(self) -> int:
        info = await self.js.stream_info(self.stream)
        return int(info.state.last_seq)

    async def delete_stream(self) -> None:
        """Remove the stream and everything in it."""
        await self.js.delete_stream(self.stream)

    async def close(self) -> None:
        if not self.nc.is_closed:
            await self.nc.drain()
