#!/usr/bin/env bash
# Install what the tests need: the project with its test and spark extras in .venv (PySpark runs
# on Java 17, installed from Debian when missing), Debian's Chromium for
# the browser tests of the reviewer pages (Playwright's own browser download is not used), and
# Debian's PostgreSQL server for the database source and sink tests (the tests start their own).
# tests/constraints.txt pins every package of that install to the versions of the last install
# that passed, so one commit installs the same test tools and libraries on every clean clone
# (README, "Testing", says how to refresh them); `pip install guanxi` keeps pyproject's ranges.
# pip hands `-c` to the install only, not to the isolated environment it builds the project in, so
# PIP_CONSTRAINT (which that environment's pip reads) pins the build's setuptools too.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
PIP_CONSTRAINT="$PWD/tests/constraints.txt" \
  .venv/bin/pip install -q --disable-pip-version-check -c tests/constraints.txt -e '.[test,spark]'

# debian_package PACKAGE WHAT: install a Debian package (with sudo when not root); in CI a failure
# fails the set-up, elsewhere the tests that need it are skipped.
debian_package() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's $1 for $2"
  if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >/dev/null; }; then
    echo "could not install $1: $2 will be skipped" >&2
    [ "${CI:-}" != "true" ] || exit 1
  fi
}
[ -x /usr/bin/chromium ] || debian_package chromium "the browser tests"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null \
  || debian_package postgresql "the PostgreSQL tests"
command -v java >/dev/null || debian_package openjdk-17-jre-headless "the Spark engine's tests"
