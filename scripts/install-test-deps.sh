#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, and does
# nothing for what is already there; safe to run again. Debian or Ubuntu, as
# root (or with sudo).
# - Chromium: tests/report.rs renders the HTML report headless; with
#   chromium-driver (chromedriver) and the npm package axe-core, the
#   console's browser test (tests/console.rs) drives it and checks each page.
# - postfix: only for its smtp-sink and smtp-source tools, which the email
#   plugin's benchmark runs; the postfix daemon is never started.
# - aiosmtpd (Python, with pip): the SMTP server the email plugin's tests
#   talk to; openssl makes the certificates of its STARTTLS test.
# - oidc-provider (npm): the OpenID provider the console's single sign-on
#   test starts on loopback.
# - postgresql: the PostgreSQL store's tests start their own server on
#   loopback (initdb into a temporary folder, as the unprivileged postgres
#   user); the cluster the package would create is never started.
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
[ -x /usr/bin/chromedriver ] || packages+=(chromium-driver)
command -v npm >/dev/null 2>&1 || packages+=(npm)
[ -x /usr/sbin/smtp-sink ] || packages+=(postfix)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || packages+=(postgresql)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3 python3-pip)
elif ! python3 -c 'import aiosmtpd' 2>/dev/null && ! python3 -m pip --version >/dev/null 2>&1; then
    packages+=(python3-pip)
fi

if [ "${#packages[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "install-test-deps: ${packages[*]} missing and this is not root; run as root: apt-get install -y ${packages[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # postfix asks how to configure itself; "No configuration" leaves it
    # unconfigured, and policy-rc.d keeps dpkg from starting the daemon.
    echo "postfix postfix/main_mailer_type select No configuration" | "${as_root[@]}" debconf-set-selections
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
        "${as_root[@]}" chmod +x "$policy"
        trap '"${as_root[@]}" rm -f "$policy"' EXIT
    fi
    # Wait for another apt or dpkg run rather than fail.
    lock=(-o DPkg::Lock::Timeout=600)
    "${as_root[@]}" apt-get "${lock[@]}" update
    "${as_root[@]}" apt-get "${lock[@]}" install -y --no-install-recommends "${packages[@]}"
fi

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "install-test-deps: apt-get ran but PostgreSQL's initdb is still missing" >&2
    exit 1
fi
for tool in /usr/bin/chromium /usr/bin/chromedriver /usr/sbin/smtp-sink /usr/sbin/smtp-source; do
    if [ ! -x "$tool" ]; then
        echo "install-test-deps: apt-get ran but $tool is still missing" >&2
        exit 1
    fi
done

python=$(command -v python3)
if ! "$python" -c 'import aiosmtpd' 2>/dev/null; then
    "$python" -m pip install --quiet 'aiosmtpd==1.4.6' \
        || "$python" -m pip install --quiet --break-system-packages 'aiosmtpd==1.4.6'
fi

# axe-core, the accessibility engine the console's browser test injects
# into each page, installed globally where the test looks (`npm root -g`).
if [ ! -f "$(npm root -g)/axe-core/axe.min.js" ]; then
    npm install --global --no-audit --no-fund 'axe-core@4.14.1'
fi

# oidc-provider, a real OpenID Connect provider the console's single
# sign-on test starts on loopback (tests/support/oidc_provider.mjs).
if ! grep -q '"version": "9.13.3"' "$(npm root -g)/oidc-provider/package.json" 2>/dev/null; then
    npm install --global --no-audit --no-fund 'oidc-provider@9.13.3'
fi
