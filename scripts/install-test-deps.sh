#!/usr/bin/env bash
# Installs the real peers the end-to-end tests talk to: rsyslog (with its
# OpenSSL network driver for the TLS listener), util-linux logger, openssl,
# socat (logger speaks no TLS: socat carries its lines over TLS), and the
# PostgreSQL server binaries (the tests run their own throwaway cluster with
# initdb and pg_ctl; no system service is needed), Debian's Chromium with
# its chromedriver (the status page is tested in a real headless browser), and
# what make binary and make deb build with (Debian's python3.11, lintian).
# Idempotent; runs as root (as on CI) or through sudo.
set -euo pipefail
need=()
command -v rsyslogd >/dev/null 2>&1 || need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 || need+=(rsyslog-openssl)
command -v logger >/dev/null 2>&1 || need+=(bsdutils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v socat >/dev/null 2>&1 || need+=(socat)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
# make binary: Debian's own python3.11 (no RUNPATH, which staticx refuses) with
# its venv module and headers; readelf. make deb: lintian.
[ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || need+=(python3.11 python3.11-venv)
[ -e /usr/include/python3.11/Python.h ] || need+=(python3.11-dev)
command -v readelf >/dev/null 2>&1 || need+=(binutils)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v lintian >/dev/null 2>&1 || need+=(lintian)
[ -s /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
command -v adduser >/dev/null 2>&1 || need+=(adduser)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Keep the package's maintainer scripts from starting a system rsyslogd: the
# tests run their own instances with their own configuration files.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  created_policy=1
fi
trap '[ $created_policy -eq 1 ] && $SUDO rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
