#!/usr/bin/env bash
# mypy over the installed shape of the package: ticketflow.domain, ticketflow.schemas, …
# The folders are mapped by [tool.setuptools.package-dir]; setuptools' editable finder
# is invisible to mypy, so build the same tree from symlinks and check that.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/ticketflow"
ln -s "$repo"/ticketflow/*.py "$tree/ticketflow/"
for package in "$repo"/ticketflow/*/__init__.py; do
  ln -s "$(dirname "$package")" "$tree/ticketflow/"
done
for folder in domain schemas projections consumers producers; do
  ln -s "$repo/$folder" "$tree/ticketflow/$folder"
done
cd "$tree"
"${MYPY:-mypy}" --config-file "$repo/pyproject.toml" -p ticketflow
