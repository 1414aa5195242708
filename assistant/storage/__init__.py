"""Storage: the tables (``tables``), the engine and sessions (``database``) and the
schema migrations (``migrate``). No domain logic: services, security and knowledge
read and write through these; this package imports only ``assistant.config`` and below."""
