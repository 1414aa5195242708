#!/usr/bin/env bash
# Vendor Chart.js (MIT) for the analytics dashboard from the npm registry: the page is
# served offline (no CDN), so the library is a file in assistant/api/static/vendor/.
# The package tarball is checked against the registry's published integrity first.
set -euo pipefail
VERSION="${1:-4.6.2}"
DEST="$(cd "$(dirname "$0")/.." && pwd)/assistant/api/static/vendor/chartjs"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "chart.js@${VERSION}" >/dev/null
expected="$(npm view "chart.js@${VERSION}" dist.integrity)"
actual="sha512-$(openssl dgst -sha512 -binary "chart.js-${VERSION}.tgz" | base64 -w0)"
if [ "$expected" != "$actual" ]; then
  echo "chart.js-${VERSION}.tgz: integrity mismatch ($actual != $expected)" >&2
  exit 1
fi
tar xzf "chart.js-${VERSION}.tgz"
mkdir -p "$DEST"
cp package/dist/chart.umd.min.js package/LICENSE.md "$DEST/"
printf 'chart.js %s from the npm registry, %s\n' "$VERSION" "$expected" > "$DEST/VERSION"
echo "Chart.js ${VERSION} -> ${DEST}"
