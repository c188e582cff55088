#!/usr/bin/env bash
# Test-only system tools, installed once when missing (called by `make test`):
# - headless Chromium (Debian's package): the HTML report's integration test screenshots the report;
# - promtool: checks infra/prometheus and runs the alert rules' unit tests. Only the binary is taken from
#   Debian's prometheus package (downloaded, unpacked), so no Prometheus server gets installed or started.
# Debian's packages need root (CI and these machines run as root); elsewhere install both by hand.
set -euo pipefail
need_chromium=$([ -x /usr/bin/chromium ] || echo yes)
need_promtool=$(command -v promtool >/dev/null || echo yes)
[ -z "$need_chromium$need_promtool" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing test tools:${need_chromium:+ chromium}${need_promtool:+ promtool}; install them (Debian: apt-get install chromium prometheus)" >&2
  exit 1
fi
apt-get update -q
if [ -n "$need_chromium" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
if [ -n "$need_promtool" ]; then
  deb_dir=$(mktemp -d)
  chmod 777 "$deb_dir"  # apt downloads as its sandbox user (_apt), which must be able to write here
  (cd "$deb_dir" && apt-get download -q prometheus)
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  install -m 0755 "$deb_dir/root/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$deb_dir"
fi
