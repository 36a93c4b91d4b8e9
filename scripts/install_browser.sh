#!/usr/bin/env bash
# Debian's Chromium for the browser tests. Never `playwright install`: it downloads a browser
# build from outside the package registries, which fails here.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" != "0" ]; then
  echo "[browser] /usr/bin/chromium missing and not root: run 'sudo apt-get install -y chromium'" >&2
  exit 1
fi
echo "[browser] installing Debian chromium" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
