#!/usr/bin/env bash
# Install what the tests need: the project with its test extra in .venv, Debian's Chromium for
# the browser tests of the reviewer pages (Playwright's own browser download is not used), and
# Debian's PostgreSQL server for the database source and sink tests (the tests start their own).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's chromium for the browser tests"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; }; then
    echo "could not install chromium: the browser tests will be skipped" >&2
    [ "${CI:-}" != "true" ] || exit 1
  fi
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's postgresql for the database tests"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null; }; then
    echo "could not install postgresql: the PostgreSQL tests will be skipped" >&2
    [ "${CI:-}" != "true" ] || exit 1
  fi
fi
