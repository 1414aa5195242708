"""The HTTP surface: the FastAPI app factory (``app``), request/response models
(``schemas``), dependencies (``deps``), one router per resource (``routers``) and the
pages (``static``). Routes parse, check and answer; what they do is in
``assistant.services`` (no business rules here)."""
