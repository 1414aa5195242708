"""Chinese labels of what the analytics count (the dashboard and the CSV files)."""

from __future__ import annotations

from typing import Dict, Optional

OTHER_CHANNEL = "other"
# The channels a turn can come from (assistant/api/schemas.py CHANNELS), and a notice's.
CHANNELS: Dict[str, str] = {
    "web": "网页",
    "wechat": "微信",
    "kiosk": "自助终端",
    "hotline": "热线",
    "api": "接口",
    "cli": "命令行",
    "sms": "短信",
    OTHER_CHANNEL: "其他",
}
INTENTS: Dict[str, str] = {
    "ask_service": "办理咨询",
    "ask_materials": "所需材料",
    "ask_conditions": "办理条件",
    "ask_process": "办理流程",
    "ask_fee": "收费标准",
    "ask_time_limit": "办理时限",
    "ask_location": "办理地点",
    "check_progress": "办件进度",
    "request_human": "转人工",
    "complain": "投诉",
    "feedback": "评价",
    "greet": "问候",
    "goodbye": "告别",
    "thank": "感谢",
    "affirm": "肯定回答",
    "deny": "否定回答",
    "inform": "提供信息",
    "out_of_scope": "超出服务范围",
    "nlu_fallback": "未能识别",
}
ANSWERS: Dict[str, str] = {
    "overview": "办理概述",
    "materials": "所需材料",
    "conditions": "办理条件",
    "process": "办理流程",
    "fee": "收费标准",
    "time_limit": "办理时限",
    "location": "办理地点",
    "clarify": "追问澄清",
    "not_covered": "未收录事项",
    "out_of_scope": "超出服务范围",
    "progress": "办件进度",
    "handoff": "转人工",
    "feedback": "评价",
    "followup": "进度提醒",
}
REASONS: Dict[str, str] = {
    "request_human": "群众要求转人工",
    "complaint": "投诉",
    "fallback": "助手未能回答",
}
NOTICE_KINDS: Dict[str, str] = {
    "progress": "办件进度提醒",
    "wechat": "微信客服消息",
}


def label(table: Dict[str, str], key: Optional[str]) -> str:
    if key is None or key == "":
        return "（无）"
    return table.get(key, key)
