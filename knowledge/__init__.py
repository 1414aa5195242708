"""The service catalog (事项 and 一件事) and its search."""
