"""Messaging channels beyond the web chat: one connector per platform (WeChat: its
endpoint and channel ``wechat``, texts ``wechat_format``, delivery ``wechat_delivery``,
state ``wechat_store``, API client ``wechat_api``, crypto, XML, simulator). A channel
speaks its platform's protocol and hands each turn to ``assistant.services``; it does
not import the HTTP routers (``assistant.api``) or the actions."""
