"""rasa-sdk action server of banshi: guidance answers, feedback, handoff requests."""
