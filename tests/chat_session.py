"""One citizen's conversation through the live gateway's chat API (``client`` fixture)."""

from __future__ import annotations

from typing import Dict, List

ASK_PHONE_TAIL = "手机号的后四位"


class Chat:
    def __init__(self, client, channel: str = "web"):
        session = client.post("/api/v1/chat/sessions")
        assert session.status_code == 201
        self.sender_id, self.token = session.json()["sender_id"], session.json()["token"]
        self.client, self.channel = client, channel

    def say(self, text: str) -> Dict:
        body = {"sender_id": self.sender_id, "text": text, "channel": self.channel, "token": self.token}
        response = self.client.post("/api/v1/chat", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def texts(self, text: str) -> str:
        return "\n".join(m.get("text") or "" for m in self.say(text)["messages"])

    def verified_lookup(self, number: str, tail: str) -> List[Dict]:
        """Look ``number`` up and give the phone's last four digits: the messages after."""
        assert ASK_PHONE_TAIL in self.texts(f"帮我查一下{number}的进度")
        return self.say(tail)["messages"]
