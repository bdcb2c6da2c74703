#!/usr/bin/env bash
# Installs the peer programs that labs' checks run (real clients and servers nobody here
# wrote): the Debian packages named on the command line, and, when nodejs is among them, the
# npm packages pinned by grader/fixtures/npm/package-lock.json.
#
#   grader/peers.sh socat redis-tools ...     as root; installs only what is missing
#
# Services are never started by the installation (policy-rc.d says no): the checks start
# their own servers on 127.0.0.1 with generated configurations.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  policy=/usr/sbin/policy-rc.d
  made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

for pkg in "$@"; do
  if [ "$pkg" = nodejs ] && [ -f "$here/fixtures/npm/package-lock.json" ]; then
    if ! command -v npm >/dev/null; then
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -qq --no-install-recommends npm >/dev/null
    fi
    (cd "$here/fixtures/npm" && npm ci --silent --no-audit --no-fund >/dev/null)
  fi
done
