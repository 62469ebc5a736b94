#!/usr/bin/env bash
# Builds dist/logtrain, a one-file executable of the agent, with PyInstaller.
# Inputs and drains are imported by name at run time, so every logtrain
# submodule is collected explicitly. (staticx, the scratch image and the
# Debian package build on this executable in a later step.) The editable
# install is invisible to PyInstaller, hence --paths .
set -euo pipefail
cd "$(dirname "$0")/.."
make setup >/dev/null
.venv/bin/pip install -q 'pyinstaller>=6'
.venv/bin/pyinstaller --noconfirm --clean --onefile --name logtrain \
  --paths . --collect-submodules logtrain \
  --distpath dist --workpath build/pyinstaller --specpath build/pyinstaller \
  packaging/entry.py
version=$(dist/logtrain --version)
echo "built dist/logtrain ($version)"
