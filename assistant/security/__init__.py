"""Security: operator accounts (``accounts``), desk sessions and CSRF (``sessions``),
login and its rate limits (``login``), who may call what (``access``), conversation
tokens (``chat_session``), the audit log (``audit``) and personal-data masking
(``pii``). No domain logic: services and the HTTP surface use these; this package
imports only ``assistant.storage`` and ``assistant.config``."""
