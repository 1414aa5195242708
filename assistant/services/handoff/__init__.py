"""Human handoff, channel-agnostic: tickets and the queue (``tickets``) and the relay of
messages between citizen and operator (``relay``). The desk's HTTP routes are in
``assistant.api.routers.desk``; the actions that open tickets in ``actions/handoff.py``."""
