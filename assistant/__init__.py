"""banshi (办事): the assistant around the Rasa dialogue, in layers whose imports only go
down: cli > api > channels > services > dialogue > security > storage > config (the
contract is in pyproject.toml). Modules go in the subpackage of their layer, never here."""
