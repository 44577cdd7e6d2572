#!/bin/sh
# What the browser end-to-end test needs, installed from package registries only: Debian's
# Chromium (when /usr/bin/chromium is missing) and Snowplow's browser tracker, as locked in
# package-lock.json. No browser build is ever downloaded by a test tool.
set -eu
cd "$(dirname "$0")"

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "tests/browser/install.sh: $* missing; install it (apt-get install -y $*) as root" >&2
        exit 1
    fi
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

[ -x /usr/bin/chromium ] || apt_install chromium
command -v npm >/dev/null 2>&1 || apt_install nodejs npm

# npm ci empties node_modules first, so run it only when the lock changed since the last one.
if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
