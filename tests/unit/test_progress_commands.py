"""The words that manage progress reminders, answered before the dialogue."""

from __future__ import annotations

import pytest

from assistant.services.progress.commands import COMMAND_CANCEL, COMMAND_LIST, command_of


@pytest.mark.parametrize("text", ["退订提醒", "取消提醒", "不要再提醒了", "别提醒我了。", "关闭通知",
                                  "我想取消办件的提醒", "退订", "TD", "取消 所有 提醒！"])
def test_cancel(text):
    assert command_of(text) == COMMAND_CANCEL


@pytest.mark.parametrize("text", ["我的提醒", "查看提醒", "我的提醒有哪些？", "看看我的订阅"])
def test_list(text):
    assert command_of(text) == COMMAND_LIST


@pytest.mark.parametrize("text", ["提醒我", "取消预约", "身份证到期提醒我", "我要退休了提醒一下材料",
                                  "社保卡怎么办", "", "退订提醒" * 10, "怎么取消社保卡挂失的提醒短信呢请问"])
def test_not_a_command(text):
    assert command_of(text) is None
