"""Pre-applications (预填) at the kiosk: a citizen fills in the fields an item's
application form asks for and photographs materials; both are sealed at rest, given a
receipt number at once (``receipts``), and reach the central server exactly once
through the kiosk outbox (``kiosk``: submitting, the outbound requests, purging after
delivery). The central server stores them sealed, opens them for operators (audited)
and deletes their personal data after the retention period (``central``). Anyone can
ask about a receipt number on any channel (``central.find_receipt``)."""
