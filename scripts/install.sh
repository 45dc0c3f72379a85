#!/usr/bin/env bash
# Idempotent installer for a fresh Debian 12 machine: system packages, the
# project virtualenv, the compiled extension (native/), and (with --test) everything the test suite needs.
# Fast when everything is already present.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

runtime_pkgs=(libkrb5-dev gcc python3-dev)
test_pkgs=(krb5-kdc krb5-admin-server krb5-user audispd-plugins auditd python3-audit
           openjdk-17-jdk-headless maven util-linux openssl
           systemd libxml2-utils  # deploy/ and smf/ checks: systemd-analyze, systemd-sysusers, xmllint
           chromium)  # the status page at / is checked as rendered by a real browser (headless)

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

# Rust (cargo) comes with the machine (rustup): a non-login shell may not have ~/.cargo/bin on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install: cargo not found: the native extension (native/) needs Rust >= 1.85 (rustup: https://rustup.rs)" >&2
  exit 3
fi

py=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
maturin_req='maturin>=1.9.4,<2'  # builds native/ (PyO3); >= 1.9.4 sets PYO3_BUILD_EXTENSION_MODULE
stamp=.venv/.installed-$( (cat pyproject.toml; echo $want_test "$maturin_req") | sha256sum | cut -c1-16)
if [ ! -e "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if [ $want_test = 1 ]; then
    .venv/bin/python -m pip install -q -e '.[test,fuzz]' "$maturin_req"
  else
    .venv/bin/python -m pip install -q -e . "$maturin_req"
  fi
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The compiled half, auditrecv._native (native/, Rust + PyO3): built into a wheel by maturin (crates from
# crates.io, Cargo.lock honoured), whose only module is put beside the editable package: the editable
# install maps the package to auditrecv/, so a second auditrecv/ in site-packages would shadow it.
# Rebuilt only when the crate, the tables it embeds or the toolchain changed.
native_so=auditrecv/_native.abi3.so
native_stamp=$( (cd native && find . \( -path ./target -o -path ./fuzz \) -prune -o -type f -print | LC_ALL=C sort | xargs sha256sum
                 sha256sum ../auditrecv/schema/data/*.tsv; cargo --version; rustc --version) | sha256sum | cut -c1-16)
if [ ! -e "$native_so" ] || [ "$(cat .venv/.native-stamp 2>/dev/null)" != "$native_stamp" ]; then
  echo "install: building the native extension (native/, release)" >&2
  rm -rf native/target/wheels
  .venv/bin/maturin build --quiet --release --locked -m native/Cargo.toml -i .venv/bin/python -o native/target/wheels
  .venv/bin/python - "$native_so" native/target/wheels/*.whl <<'PY'
import sys, zipfile
target, wheel = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    data = z.read("auditrecv/_native.abi3.so")
with open(target + ".tmp", "wb") as f:
    f.write(data)
PY
  mv -f "$native_so.tmp" "$native_so"  # a new inode: a running process keeps its mapped copy
  echo "$native_stamp" > .venv/.native-stamp
fi

if [ $want_test = 1 ]; then
  bash tests/engine/build.sh
fi
