"""Two fixes for per-turn costs inside Rasa 3.6, applied once when the agent loads.

Both keep Rasa's behaviour and errors; they only stop repeating constant work:

* Every custom-action reply is checked with ``jsonschema.validate``, which first
  re-validates the constant schema against its meta-schema: ~70 ms per action here.
  A validator compiled once does the same checks.
* Every stored event is turned back into its class by walking all subclasses of
  ``Event`` (``resolve_by_type``): ~0.1 ms per event, so loading a long conversation
  costs tens of milliseconds. A name → class table does the same lookup.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

_INSTALLED = False


def _install_fast_action_validation() -> None:
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_cls = validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)

    def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
        try:
            validator.validate(result)
        except ValidationError as exc:
            exc.message += ". Failed to validate Action server response from API."
            raise
        return True

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[assignment]


def _install_event_type_cache() -> None:
    import rasa.shared.utils.common
    from rasa.shared.core.events import Event

    original = Event.resolve_by_type
    table: Dict[str, Type[Event]] = {}

    def resolve_by_type(type_name: str, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
        cls = table.get(type_name)
        if cls is None:
            table.update(
                {c.type_name: c for c in rasa.shared.utils.common.all_subclasses(Event) if hasattr(c, "type_name")}
            )
            cls = table.get(type_name)
        return cls if cls is not None else original(type_name, default)

    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[assignment]


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    _install_fast_action_validation()
    _install_event_type_cache()
    _INSTALLED = True
