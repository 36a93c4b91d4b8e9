#!/usr/bin/env bash
# Debian's Chromium (and a CJK font, without which Chinese renders as boxes in screenshots)
# for the browser tests. Never `playwright install`: it downloads a browser build from
# outside the package registries, which fails here.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
fc-list 2>/dev/null | grep -qi "wenquanyi\|wqy" || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != "0" ]; then
  echo "[browser] missing ${need[*]} and not root: run 'sudo apt-get install -y ${need[*]}'" >&2
  exit 1
fi
echo "[browser] installing ${need[*]} from Debian" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
