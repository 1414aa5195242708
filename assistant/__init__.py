"""banshi (办事): gateway, channels, CLI and custom Rasa components."""
