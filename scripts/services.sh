#!/usr/bin/env bash
# Start and install what the test suite talks to: PostgreSQL (started if down), the Debian
# tools some tests drive (SpamAssassin for the spam score, Chromium for browser tests), and
# axe-core from npm (the accessibility check the browser tests run in each page).
set -euo pipefail

if command -v pg_lsclusters >/dev/null 2>&1; then
  if ! pg_lsclusters --no-header 2>/dev/null | grep -q online; then
    echo "starting PostgreSQL" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi

need=()
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: not root, cannot install ${need[*]}; the tests that need them will skip" >&2
  fi
fi

# The version the browser tests were written against; its rules change between majors.
AXE=axe-core@4
if command -v npm >/dev/null 2>&1 && [ ! -f "$(npm root -g)/axe-core/axe.min.js" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "installing $AXE" >&2
    npm install --global --silent --no-audit --no-fund "$AXE" >/dev/null
  else
    echo "warning: not root, cannot install $AXE; the accessibility checks will skip" >&2
  fi
fi
