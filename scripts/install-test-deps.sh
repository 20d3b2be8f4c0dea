#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain: Chromium, with
# which tests/report.rs renders the HTML report headless, and OpenSSL's
# headers with pkg-config, with which the telegram plugin's HTTPS client
# (teloxide over native-tls) builds. Does nothing when they are already
# installed; safe to run again. Debian or Ubuntu, as root (or with sudo).
set -euo pipefail

missing=()
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium)
fi
if ! pkg-config --exists openssl 2>/dev/null; then
    missing+=(libssl-dev pkg-config)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-test-deps: ${missing[*]} missing and this is not root; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt or dpkg run rather than fail.
lock=(-o DPkg::Lock::Timeout=600)
"${as_root[@]}" apt-get "${lock[@]}" update
"${as_root[@]}" apt-get "${lock[@]}" install -y "${missing[@]}"

if [ ! -x /usr/bin/chromium ]; then
    echo "install-test-deps: apt-get ran but /usr/bin/chromium is still missing" >&2
    exit 1
fi
if ! pkg-config --exists openssl; then
    echo "install-test-deps: apt-get ran but pkg-config still finds no openssl" >&2
    exit 1
fi
