#!/usr/bin/env bash
# The deploy tests run `nginx -t` and `caddy validate` on deploy/ when those binaries exist.
# With CI=true missing ones are installed from Debian's packages (a few seconds), so CI
# checks the real configurations; elsewhere those checks skip and say why. Never fatal:
# the text checks of the same files run either way.
set -u
[ "${CI:-}" = "true" ] || exit 0
missing=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
command -v caddy >/dev/null 2>&1 || missing="$missing caddy"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
[ -n "$missing" ] || exit 0
sudo=""
if [ "$(id -u)" != "0" ]; then sudo="sudo -n"; fi
export DEBIAN_FRONTEND=noninteractive
echo "installing for the deploy checks:$missing"
if ! $sudo apt-get install -y -q $missing >/dev/null 2>&1; then
  $sudo apt-get update -q >/dev/null 2>&1 && $sudo apt-get install -y -q $missing >/dev/null 2>&1 \
    || echo "could not install$missing; those deploy checks will skip" >&2
fi
# The packages start their daemons; the tests only need the binaries.
$sudo service nginx stop >/dev/null 2>&1 || true
$sudo service caddy stop >/dev/null 2>&1 || true
exit 0
