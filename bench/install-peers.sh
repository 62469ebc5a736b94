#!/usr/bin/env bash
# Installs the peers the benchmarks run beside the agent, on Debian 12:
# rsyslog from Debian's packages (through the tests' own installer), socat, and
# syslog-ng unpacked into .bench/syslog-ng. Debian declares rsyslog and
# syslog-ng-core as conflicting, so syslog-ng is not installed as a package:
# its .deb is downloaded and extracted (no maintainer scripts run, no service
# starts) and only its shared-library dependencies are installed with apt.
# Idempotent; runs as root or through sudo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
prefix=.bench/syslog-ng
if [ ! -x "$prefix/usr/sbin/syslog-ng" ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  chmod 777 "$work"  # apt downloads as its own user
  (cd "$work" && apt-get download -qq syslog-ng-core >/dev/null)
  deb=$(ls "$work"/syslog-ng-core_*.deb)
  # Library dependencies only (not the packages that would start a service).
  deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/|.*//' \
         -e 's/ //g' | grep -E '^lib' || true)
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $deps >/dev/null
  mkdir -p "$prefix"
  dpkg -x "$deb" "$prefix"
fi
command -v socat >/dev/null 2>&1 || $SUDO apt-get install -y -qq socat >/dev/null
LD_LIBRARY_PATH="$prefix/usr/lib/syslog-ng" "$prefix/usr/sbin/syslog-ng" --version | head -1
rsyslogd -v | head -1
