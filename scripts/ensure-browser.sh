#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the report's browser test
# (tests/test_report_html.py) when they are missing. `make test` runs this first.
# Without root (or password-less sudo) or apt, it says so and the browser test skips with the
# command to run; with SIMEVAL_REQUIRE_BROWSER=1 (CI: .ci/run) that is an error instead.
set -uo pipefail

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo -n"
fi
echo "ensure-browser: installing chromium and chromium-driver (apt) for the report's browser test"
if command -v apt-get >/dev/null \
    && $sudo apt-get update -qq \
    && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; then
    exit 0
fi
message="could not install chromium and chromium-driver with apt (run: sudo apt-get install chromium chromium-driver)"
if [ "${SIMEVAL_REQUIRE_BROWSER:-0}" = "1" ]; then
    echo "ensure-browser: error: $message" >&2
    exit 1
fi
echo "ensure-browser: warning: $message; tests/test_report_html.py will skip" >&2
exit 0
