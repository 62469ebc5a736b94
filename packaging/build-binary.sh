#!/usr/bin/env bash
# Builds dist/logtrain, a one-file executable of the agent, with PyInstaller.
# Inputs and drains are imported by name at run time, so every logtrain
# submodule is collected explicitly, and urllib3 (loaded through importlib
# after ssl is patched, which PyInstaller cannot see) is named. (staticx, the scratch image and the
# Debian package build on this executable in a later step.) The editable
# install is invisible to PyInstaller, hence --paths .
set -euo pipefail
cd "$(dirname "$0")/.."
dist=${LOGTRAIN_DIST:-dist}            # where the executable goes
work=${LOGTRAIN_BUILD:-build/pyinstaller}  # PyInstaller's work folder and its log
mkdir -p "$work"
log="$work/build.log"
# Quiet: the whole log of pip and PyInstaller goes to $log, shown only when
# a step fails; what is printed is the result.
quiet() {
  if ! "$@" >>"$log" 2>&1; then
    echo "build-binary: failed: $*" >&2
    tail -n 60 "$log" >&2
    echo "build-binary: the whole log is $log" >&2
    exit 1
  fi
}
: >"$log"
quiet make setup
quiet .venv/bin/pip install -q 'pyinstaller>=6'
# Excluded: packages the build environment drags in (setuptools and
# pkg_resources through the venv's distutils hack, multiprocessing, tkinter)
# whose PyInstaller runtime hooks import them at every start, and Cython.
# Measured on the TCP relay: 37.5 -> 24.0 MiB resident, 26.5 -> 13.4 MiB
# anonymous, 421 -> 233 modules loaded.
excludes=()
for m in setuptools pkg_resources distutils _distutils_hack tkinter _tkinter multiprocessing \
         Cython pyximport unittest pydoc xml xmlrpc; do
  excludes+=(--exclude-module "$m")
done
# packaging/hooks replaces the contributed psycopg2 hook, whose hidden import
# mx.DateTime does not exist here (see the hook).
quiet .venv/bin/pyinstaller --noconfirm --clean --onefile --name logtrain \
  --paths . --collect-submodules logtrain "${excludes[@]}" \
  --hidden-import urllib3 --additional-hooks-dir packaging/hooks \
  --distpath "$dist" --workpath "$work" --specpath "$work" \
  packaging/entry.py
version=$("$dist/logtrain" --version)
echo "built $dist/logtrain ($version, $(du -m "$dist/logtrain" | cut -f1) MB; build log: $log)"
