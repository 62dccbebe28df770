#!/usr/bin/env bash
# Re-resolve the newest allowed dependencies in a scratch venv and write constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
python3 -m venv "$scratch"
"$scratch/bin/pip" install -q -e '.[dev]'
{
  echo "# The dependency set the test suite was last run with (pip freeze of a fresh .venv)."
  echo "# scripts/test.sh and the README install with -c constraints.txt; refresh it with"
  echo "# scripts/freeze.sh after upgrading, and run the suite."
  "$scratch/bin/pip" freeze --exclude-editable | grep -v '^ticketflow'
} > constraints.txt
echo "wrote constraints.txt; now run: bash scripts/test.sh"
