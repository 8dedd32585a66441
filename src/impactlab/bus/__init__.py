"""The message bus that carries market data, hedge requests, orders and fills between the feed handlers,
the hedging engine and the service: an in-process implementation (the default) and NATS JetStream (for
deployment).  See :mod:`impactlab.bus._base` for the contract."""

from impactlab.bus._base import Bus, Message, Subscription, subject_matches
from impactlab.bus.memory import InMemoryBus
from impactlab.bus.nats import NatsBus
from impactlab.bus.server import NatsServer

__all__ = ["Bus", "InMemoryBus", "Message", "NatsBus", "NatsServer", "Subscription", "subject_matches"]
