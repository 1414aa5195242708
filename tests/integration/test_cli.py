"""The `banshi` command line, run as a user runs it."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port, run_cli

pytestmark = pytest.mark.model


def test_parse_jsonl_prints_one_result_per_line(trained_model):
    stdin = "\n".join(
        ["身份证丢了怎么补办", json.dumps({"text": "我想办社保卡要带什么"}, ensure_ascii=False), "{broken", "", "今天天气怎么样"]
    )
    result = run_cli(["parse", "--jsonl"], stdin=stdin + "\n")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 4
    assert lines[0]["items"][0]["id"] == "id_card_reissue"
    assert set(lines[0]) == {"intent", "items", "entities"}
    assert lines[1]["intent"]["name"] == "ask_materials"
    assert lines[1]["items"][0]["id"] == "social_security_card"
    assert "error" in lines[2]
    assert lines[3]["items"] == []


def test_parse_single_text(trained_model):
    result = run_cli(["parse", "公积金怎么提取"])
    assert result.returncode == 0
    assert json.loads(result.stdout.strip().splitlines()[-1])["items"][0]["id"] == "housing_fund_withdrawal"


def test_kb_validate_passes_and_fails_with_file_and_field(tmp_path):
    ok = run_cli(["kb", "validate"])
    assert ok.returncode == 0 and "43 items, 12 bundles" in ok.stdout
    broken = tmp_path / "catalog"
    shutil.copytree(ROOT / "knowledge" / "catalog", broken)
    path = broken / "items" / "id_card_reissue.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("time_limit:", "time_limitx:"), encoding="utf-8")
    bad = run_cli(["kb", "validate", "--catalog", str(broken)])
    assert bad.returncode == 1
    assert "id_card_reissue.yml: time_limit: field required" in bad.stderr


def test_kb_import_rejects_a_bad_file(tmp_path):
    source = tmp_path / "x.csv"
    source.write_text("id,kind\nfoo,item\n", encoding="utf-8")
    result = run_cli(["kb", "import", str(source), "--out", str(tmp_path / "out")])
    assert result.returncode == 1 and "missing columns" in result.stderr


def test_run_starts_everything_and_stops_on_ctrl_c(trained_model, tmp_path):
    port, action_port = free_port(), free_port()
    env = {
        **os.environ,
        "BANSHI_PORT": str(port),
        "BANSHI_ACTION_PORT": str(action_port),
        "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{action_port}/webhook",
        "BANSHI_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.cli", "run"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        output = ""
        while "Ctrl-C" not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            output += line
        assert "ready" in output, output[-3000:]
        assert f"http://127.0.0.1:{port}/" in output
        reply = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/chat",
            json={"sender_id": "a", "text": "我想办社保卡要带什么"}, timeout=30,
        )
        assert reply.status_code == 200
        assert "社会保障卡申领" in reply.json()["messages"][0]["text"]
        assert httpx.get(f"http://127.0.0.1:{action_port}/health").status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
    assert code == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{action_port}/health", timeout=2)


def test_terminal_chat(trained_model, tmp_path):
    action_port = free_port()
    env = {
        **os.environ,
        "BANSHI_ACTION_PORT": str(action_port),
        "BANSHI_ACTION_ENDPOINT": f"http://127.0.0.1:{action_port}/webhook",
        "BANSHI_DATA_DIR": str(tmp_path / "data"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", "chat"], cwd=ROOT, env=env,
        input="我想办护照\n要带什么\n/quit\n", capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "助手: 【普通护照签发】" in result.stdout
    assert "办理【普通护照签发】需要准备" in result.stdout
