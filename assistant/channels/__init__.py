"""Messaging channels beyond the web chat: one module per connector (WeChat)."""
