#!/bin/sh
# Regenerates the real program output the multiline tests read: runs each
# program in src/ with its own toolchain (java, python3, node, go) and keeps
# what it printed (stdout and stderr together, as one container stream).
set -e
cd "$(dirname "$0")"
tmp=$(mktemp -d)
javac -d "$tmp" src/Boom.java && (java -cp "$tmp" Boom > java.txt 2>&1 || true)
python3 src/boom.py > python.txt 2>&1 || true
node src/boom.js > nodejs.txt 2>&1 || true
(cd "$tmp" && cp "$OLDPWD/src/boom.go" . && GOCACHE="$tmp/cache" go build -o boom boom.go) && \
  ("$tmp/boom" > go.txt 2>&1 || true)
rm -rf "$tmp"
