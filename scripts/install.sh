#!/usr/bin/env bash
# Idempotent installer for a fresh Debian 12 machine: system packages, the
# project virtualenv, and (with --test) everything the test suite needs.
# Fast when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

runtime_pkgs=(libkrb5-dev gcc python3-dev)
test_pkgs=(krb5-kdc krb5-admin-server krb5-user audispd-plugins auditd python3-audit
           openjdk-17-jdk-headless maven util-linux openssl)

missing=()
pkgs=("${runtime_pkgs[@]}")
[ $want_test = 1 ] && pkgs+=("${test_pkgs[@]}")
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt packages: ${missing[*]}" >&2
  as_root apt-get update -qq
  # auditd's postinst tries to start the daemon; no init system here, so keep it quiet.
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.installed-$( (cat pyproject.toml; echo $want_test) | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ $want_test = 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test,fuzz]'
  else
    .venv/bin/python -m pip install -q -e .
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi

if [ $want_test = 1 ]; then
  bash tests/engine/build.sh
fi
