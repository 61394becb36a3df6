#!/usr/bin/env bash
# The browser tests (tests/sandbox, marker "browser") drive Debian's chromium through
# Playwright; Playwright's own browser downloads are never used.
# With CI=true a missing /usr/bin/chromium is installed with apt-get, and failing to do so
# fails the run; elsewhere the browser tests skip and say why.
set -u
chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then exit 0; fi
if [ "${CI:-}" = "true" ]; then
  echo "chromium missing and CI=true: installing Debian's chromium"
  sudo=""
  if [ "$(id -u)" != "0" ]; then sudo="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  if $sudo apt-get update -q && $sudo apt-get install -y -q chromium && [ -x "$chromium" ]; then
    exit 0
  fi
  echo "could not install chromium (apt-get install chromium) and CI=true: failing" >&2
  exit 1
fi
echo "chromium not installed: browser tests will be skipped (apt-get install chromium)" >&2
exit 0
