"""One FastAPI router per resource (conversation, items, health, assist, desk,
desk_auth, admin, voice, tts, inbox). Routers do not import each other; shared
turn handling is in ``assistant.services``."""
