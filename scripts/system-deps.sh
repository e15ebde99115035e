#!/usr/bin/env bash
# System programs the tests use for real: Prometheus, Alertmanager, promtool and the
# Pushgateway (Debian).
# Installs them when missing and we are root; otherwise the tests that need them skip — except
# under MLSPEC_STRICT_SKIPS=1 (CI), where a failed install fails here, before any test runs.
set -uo pipefail
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null 2>&1 || need+=(prometheus-pushgateway)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }; then
    echo "could not install ${need[*]} with apt-get; tests that need them will be skipped" >&2
    [ "${MLSPEC_STRICT_SKIPS:-}" = 1 ] && exit 1
  fi
  # The Debian packages start services on install where an init system runs; tests start their own.
  (service prometheus stop; service prometheus-alertmanager stop; service prometheus-node-exporter stop; service prometheus-pushgateway stop) >/dev/null 2>&1 || true
else
  echo "note: ${need[*]} missing and not root; tests that need them will be skipped" >&2
  [ "${MLSPEC_STRICT_SKIPS:-}" = 1 ] && exit 1
fi
exit 0
