#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests when it is missing
# (`playwright install` cannot download browsers on this network).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "installing Debian's chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version
