#!/usr/bin/env bash
# `scripts/install.sh VENV PIP-ARGS...`: creates VENV if needed and runs
# `pip install PIP-ARGS` in it, showing what pip is doing on one line (on a
# terminal) instead of a silent minute; pip's whole output only if it fails.
# Used by `make run` (a plain install) and `make setup` (with the dev extra).
set -uo pipefail
venv=$1
shift
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || exit 1
fi
echo "Installing Falsework into $venv/ ($*): a minute or two the first time…"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$venv/bin/python" -m pip install -q --upgrade pip >"$log" 2>&1
"$venv/bin/python" -m pip install --progress-bar off "$@" 2>&1 | tee -a "$log" | {
  count=0
  while IFS= read -r line; do
    case $line in
      Collecting* | Downloading* | Building* | Installing*)
        count=$((count + 1))
        if [ -t 1 ]; then printf '\r\033[K  %d: %.70s' "$count" "$line"; fi
        ;;
    esac
  done
  if [ -t 1 ]; then printf '\r\033[K'; fi
}
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  cat "$log"
  echo "pip install failed (exit $status): see above" >&2
  exit "$status"
fi
echo "Installed."
