#!/usr/bin/env bash
# One-time set-up, safe to re-run: the sandbox's system tools, a virtualenv, the package.
# Used by `make demo` and `make test` (and so by CI).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
if [ "$(id -u)" = 0 ]; then command -v setpriv >/dev/null 2>&1 || missing+=(util-linux); fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} (the grading sandbox)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: the grading sandbox needs ${missing[*]}; install them (e.g. sudo apt-get install ${missing[*]})" >&2
    echo "setup: continuing; grading will refuse to run without them unless --insecure-no-sandbox is given" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# The constraints keep CI and developers on the CPU build of torch when torch is asked for.
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints/ci.txt -e ".[test]"
