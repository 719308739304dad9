#!/usr/bin/env bash
# Debian's chromium, for the browser test of the reconcile report
# (tests/integration/reconcile/test_report_browser.py): installed when it is missing and we
# are root, as migration/local/services.py installs mariadb-server. Quiet (apt's output
# goes to .venv/chromium-install.log) and tried once: a failed attempt leaves
# .venv/chromium-install.failed, which the test names in its skip reason (`make clean`, or
# deleting that file, tries again).
set -uo pipefail
cd "$(dirname "$0")/.."
log=.venv/chromium-install.log
failed=.venv/chromium-install.failed
mkdir -p .venv

if command -v chromium >/dev/null 2>&1 || [ -f "$failed" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  exit 0  # nothing to try here; the test says why it skips
fi
echo "installing Debian's chromium for the HTML report's browser test (once; log: $log)" >&2
export DEBIAN_FRONTEND=noninteractive
if apt-get update -q >"$log" 2>&1 &&
   apt-get install -y -q --no-install-recommends chromium >>"$log" 2>&1 &&
   command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "apt-get install chromium failed (see $log); the browser test will be skipped" | tee "$failed" >&2
exit 0
