"""A short stand-in for ``banshi train`` in tests (BANSHI_RETRAIN_COMMAND): prints the
kind of output a Rasa training prints (components, tqdm bars redrawn with ``\\r``),
optionally waits for a file to appear (so a test can see the run "running"), then
prints the model path and exits 0, or exits with the given code.

    python tests/retrain_script.py [--hold FILE] [--model FILE] [--exit CODE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HOLD_LIMIT_SECONDS = 60.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hold", type=Path, help="wait (at most a minute) until this file exists")
    parser.add_argument("--model", type=Path, help="write this model file and print its path")
    parser.add_argument("--exit", type=int, default=0)
    args = parser.parse_args()
    print("train.generated.updated dictionary=jieba examples=generated", flush=True)
    print("Starting to train component 'DIETClassifier'.", flush=True)
    for step in (1, 2):
        sys.stdout.write(f"\rEpochs:  {step * 50}%|{'#' * step * 5:<10}| {step}/2 [00:01<00:00]")
        sys.stdout.flush()
        time.sleep(0.1)
    print(flush=True)
    if args.hold is not None:
        deadline = time.monotonic() + HOLD_LIMIT_SECONDS
        while not args.hold.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    if args.exit:
        print("rasa.train failed: simulated", flush=True)
        return args.exit
    print("Finished training component 'DIETClassifier'.", flush=True)
    if args.model is not None:
        args.model.write_bytes(b"model")
        print(f"Your Rasa model is trained and saved at '{args.model}'.", flush=True)
        print(args.model, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
