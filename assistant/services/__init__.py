"""Domain services, channel-agnostic: a conversation turn (``conversation``), speech
for the dialogue (``speech``), application progress (``progress``), human handoff
(``handoff``), operators' suggested answers (``assist``), the kiosk outbox
(``outbox``) and live updates (``live``). No HTTP routes (``assistant.api``) and no
channel protocol (``assistant.channels``) here."""
