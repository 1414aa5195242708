"""Human handoff, channel-agnostic: tickets and the queue (``tickets``) and the relay of
messages between citizen and operator (``relay``). The desk's HTTP routes are in
``assistant.api.routers.desk``; the actions that open tickets in ``actions/handoff.py``."""

# Both modules register kinds of the storage spool: every process that uses one of
# them can replay the other's waiting writes too (they share order keys).
from assistant.services.handoff import relay, tickets  # noqa: E402,F401
