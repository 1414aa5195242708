"""What the admin page shows of a training's output: the phase, percent and model path
read from the lines ``banshi train`` prints (Rasa 3.6's own log and tqdm texts), and
the command run (BANSHI_RETRAIN_COMMAND or ``python -m assistant.cli train``)."""

from __future__ import annotations

import sys

from assistant.services.retrain import PHASE_SKIPPED, PHASE_STARTING, Progress, command_for


def feed(*lines: str) -> Progress:
    progress = Progress()
    for line in lines:
        progress.feed(line.encode())
    return progress


def test_phases_percent_and_model_path_from_rasa_output():
    progress = feed("2026-12-05 09:40:00 INFO rasa.engine.training.hooks  - Starting to train component 'LinearIntentClassifier'.")
    assert progress.phase == "训练组件 LinearIntentClassifier" and progress.percent is None
    progress.feed("Epochs:  45%|████▌     | 45/100 [00:10<00:12,  4.31it/s, t_loss=1.2]".encode())
    assert progress.percent == 45 and progress.phase == "训练组件 LinearIntentClassifier"
    progress.feed(b"\x1b[32mFinished training component 'LinearIntentClassifier'.\x1b[0m")
    assert progress.phase == "完成组件 LinearIntentClassifier" and progress.percent is None
    assert progress.last_line == "Finished training component 'LinearIntentClassifier'."
    progress.feed("Your Rasa model is trained and saved at '/srv/banshi/models/banshi-0123abcd.tar.gz'.".encode())
    assert progress.phase == "保存模型" and progress.model_path is None  # a sentence, not the path
    progress.feed(b"/srv/banshi/models/banshi-0123abcd.tar.gz")  # what `banshi train` prints last
    assert progress.model_path == "/srv/banshi/models/banshi-0123abcd.tar.gz"


def test_blank_and_undecodable_lines_keep_the_last_line():
    progress = feed("train.skipped model=banshi-0123abcd.tar.gz (inputs unchanged)", "   ")
    assert progress.phase == PHASE_SKIPPED
    progress.feed(b"\xff\xfe broken")
    assert progress.last_line.endswith("broken") and Progress().phase == PHASE_STARTING


def test_the_command_is_the_setting_or_banshi_train(settings):
    assert command_for(settings.copy(update={"retrain_command": None})) == [
        sys.executable, "-m", "assistant.cli", "train"
    ]
    custom = settings.copy(update={"retrain_command": "/usr/bin/env python3 'a b.py' --force"})
    assert command_for(custom) == ["/usr/bin/env", "python3", "a b.py", "--force"]
