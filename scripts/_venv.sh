# Sourced by scripts/*: create or reuse .venv and install what the project needs.
# The install is skipped when pyproject.toml has not changed since the last one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Leitai needs Python 3.11 or newer (found: $("$PY" --version 2>&1))." >&2
  exit 1
fi
if [[ ! -x .venv/bin/python ]]; then
  echo "Creating .venv ..." >&2
  "$PY" -m venv .venv
fi
STAMP=".venv/.leitai-installed-${LEITAI_EXTRAS:-base}"
if [[ ! -f "$STAMP" || pyproject.toml -nt "$STAMP" ]]; then
  echo "Installing dependencies into .venv ..." >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".${LEITAI_EXTRAS:+[$LEITAI_EXTRAS]}" >&2
  touch "$STAMP"
fi
