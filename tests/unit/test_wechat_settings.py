"""WeChat settings fail fast with a message naming what to set."""

import pytest
from pydantic import ValidationError

from assistant.config.settings import Settings

KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OFF = {"wechat_token": None, "wechat_app_id": None, "wechat_app_secret": None, "wechat_encoding_aes_key": None}


def make(**values):
    return Settings(**{**OFF, **values})


def test_off_without_a_token():
    assert make().wechat_enabled is False


def test_a_token_needs_the_app_id_and_secret():
    with pytest.raises(ValidationError) as error:
        make(wechat_token="abc123")
    assert "BANSHI_WECHAT_APP_ID" in str(error.value) and "BANSHI_WECHAT_APP_SECRET" in str(error.value)


def test_compatible_and_safe_modes_need_the_aes_key():
    base = {"wechat_token": "abc123", "wechat_app_id": "wx1", "wechat_app_secret": "s"}
    for mode in ("compatible", "safe"):
        with pytest.raises(ValidationError) as error:
            make(wechat_mode=mode, **base)
        assert "BANSHI_WECHAT_ENCODING_AES_KEY" in str(error.value)
    assert make(wechat_mode="plain", **base).wechat_enabled
    assert make(wechat_mode="safe", wechat_encoding_aes_key=KEY, **base).wechat_mode == "safe"


@pytest.mark.parametrize("values", [
    {"wechat_encoding_aes_key": KEY[:-1]},  # 42 characters
    {"wechat_encoding_aes_key": KEY[:-1] + "+"},
    {"wechat_token": "ab"},  # WeChat tokens have 3-32 letters or digits
    {"wechat_token": "has space"},
    {"wechat_mode": "secure"},
    {"wechat_api_base": "api.weixin.qq.com"},
    {"wechat_passive_seconds": 5},  # WeChat gives up at 5 s
])
def test_bad_values_are_refused(values):
    base = {"wechat_token": "abc123", "wechat_app_id": "wx1", "wechat_app_secret": "s",
            "wechat_encoding_aes_key": KEY}
    with pytest.raises(ValidationError):
        make(**{**base, **values})


def test_api_base_loses_its_trailing_slash():
    assert make(wechat_api_base="http://127.0.0.1:8790/").wechat_api_base == "http://127.0.0.1:8790"


def test_the_simulator_explains_how_to_switch_the_channel_on():
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("BANSHI_WECHAT_")}
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "wechat-sim"], capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 2
    assert "BANSHI_WECHAT_TOKEN" in result.stderr and "BANSHI_WECHAT_API_BASE" in result.stderr
