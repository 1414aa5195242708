"""Application progress (办件进度) and what follows it: the records and their numbers
(``records``), where they come from (``providers``: local tables or a case-management
system over HTTP), the phone-check lockout (``guard``), the CSV import (``importer``,
with the demo data beside it); status events pushed by the case-management system
(``events``), subscriptions (``subscriptions``), the notices they cause (``notices``:
text, quiet hours, daily cap) and their sending (``dispatch``), reminders (服务找人:
``reminders``, ``reminder_rules``), notices kept for the web chat (``webchat``) and
the gateway's scheduler of both (``loop``). The dialogue's progress form is in
``actions/progress.py``."""
