#!/usr/bin/env bash
# Builds dist/logtrain, one static executable of the whole agent (every input,
# datasource and drain, the Cython extensions, grpc for Envoy, psycopg2 with
# its libpq): PyInstaller (one file), then staticx, so that it needs no shared
# library from the host and runs in an empty chroot or a scratch image.
#
# Why a second virtual environment (build/static-venv) made with Debian's
# python3.11: this machine's default Python (pyenv) sets DT_RUNPATH on
# libpython and on every extension module it builds, which staticx refuses;
# Debian's own interpreter sets none. The Cython extensions are built there
# again (pip install ., not editable), so the in-tree ones of .venv are not used.
# Wheels that bundle libraries (psycopg2-binary) carry an RPATH of
# $ORIGIN/../x.libs, which staticx refuses too: PyInstaller's copies of those
# libraries are cleared with patchelf before the archive is packed (see
# packaging/hooks/clear_rpath.py); they all sit in one folder at run time.
#
# Inputs and drains are imported by name at run time, so every logtrain
# submodule is collected explicitly, and urllib3 (loaded through importlib
# after ssl is patched, which PyInstaller cannot see) is named.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dist=${LOGTRAIN_DIST:-dist}                      # where the executable goes
work=${LOGTRAIN_BUILD:-build/pyinstaller}        # PyInstaller's work folder and its log
svenv=${LOGTRAIN_STATIC_VENV:-build/static-venv} # Debian's python3.11, no RUNPATH
pybuild=${LOGTRAIN_BUILD_PYTHON:-/usr/bin/python3.11}
mkdir -p "$work" "$dist"
dist=$(cd "$dist" && pwd); work=$(cd "$work" && pwd)
log="$work/build.log"
# Quiet: the whole log of pip, PyInstaller and staticx goes to $log, shown
# only when a step fails; what is printed is the result.
quiet() {
  if ! "$@" >>"$log" 2>&1; then
    echo "build-binary: failed: $*" >&2
    tail -n 60 "$log" >&2
    echo "build-binary: the whole log is $log" >&2
    exit 1
  fi
}
: >"$log"
if [ ! -x "$pybuild" ]; then
  echo "build-binary: $pybuild is missing (apt-get install python3.11-venv python3.11-dev)" >&2
  exit 1
fi
# The environment is reused between builds; the package is reinstalled
# whenever its sources are newer than the last install.
stamp="$svenv/.logtrain-installed"
if [ ! -x "$svenv/bin/python" ]; then
  quiet "$pybuild" -m venv "$svenv"
  quiet "$svenv/bin/pip" install -q --upgrade pip
  quiet "$svenv/bin/pip" install -q 'pyinstaller>=6' 'staticx>=0.14' patchelf
fi
if [ ! -f "$stamp" ] || [ -n "$(find pyproject.toml setup.py ext logtrain -newer "$stamp" \
      -not -name '*.so' -not -name '*.pyc' -not -path '*/__pycache__*' -print -quit)" ]; then
  quiet "$svenv/bin/pip" install -q --force-reinstall --no-deps .
  quiet "$svenv/bin/pip" install -q '.[envoy]'
  touch "$stamp"
fi
# Excluded: packages the build environment drags in (setuptools and
# pkg_resources through the venv's distutils hack, multiprocessing, tkinter)
# whose PyInstaller runtime hooks import them at every start, and Cython.
excludes=()
for m in setuptools pkg_resources distutils _distutils_hack tkinter _tkinter multiprocessing \
         Cython pyximport unittest pydoc xml xmlrpc; do
  excludes+=(--exclude-module "$m")
done
# --optimize 2 (python -OO: no docstrings, no asserts; the agent's asserts only
# narrow types): 0.8 MiB less resident for the TCP relay (26.6 -> 25.8 MiB).
# Run from $work, so that the logtrain found is the one installed in $svenv
# (its extensions built by Debian's python), never the source tree's.
# packaging/hooks replaces the contributed psycopg2 hook, whose hidden import
# mx.DateTime does not exist here (see the hook).
( cd "$work" && PATH="$root/$svenv/bin:$PATH" quiet "$root/$svenv/bin/pyinstaller" \
    --noconfirm --clean --onefile --name logtrain-dynamic --optimize "${LOGTRAIN_OPTIMIZE:-2}" \
    --collect-submodules logtrain "${excludes[@]}" \
    --hidden-import urllib3 --additional-hooks-dir "$root/packaging/hooks" \
    --distpath "$work/dist" --workpath "$work" --specpath "$work" \
    "$root/packaging/entry.py" )
# staticx: the PyInstaller executable, every shared library it and its
# archive need (glibc, libssl, libpq, ...) and the dynamic loader in one file.
# --strip drops debugging symbols (smaller file, less to extract).
# --no-compress: xz made the file 3 MB smaller but every start 0.3 s slower
# (0.66 s against 1.0 s for --version here) and its unpacking peak larger.
PATH="$root/$svenv/bin:$PATH" quiet "$svenv/bin/staticx" --strip --no-compress \
  "$work/dist/logtrain-dynamic" "$dist/logtrain.tmp"
# staticx writes it 0700: the image runs it as a user other than its owner
chmod 0755 "$dist/logtrain.tmp"
mv "$dist/logtrain.tmp" "$dist/logtrain"
# What packaging/Dockerfile copies besides the executable: the build host's CA
# bundle (Debian's ca-certificates), an empty /tmp (1777) and state directory.
ca=${LOGTRAIN_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || { echo "build-binary: no CA bundle at $ca (apt-get install ca-certificates)" >&2; exit 1; }
mkdir -p "$dist/image/tmp" "$dist/image/state"
chmod 1777 "$dist/image/tmp"
chmod 0750 "$dist/image/state"
cp "$ca" "$dist/image/ca-certificates.crt"
version=$("$dist/logtrain" --version)
echo "built $dist/logtrain ($version, $(du -m "$dist/logtrain" | cut -f1) MB, static; build log: $log)"
