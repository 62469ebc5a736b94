#!/usr/bin/env bash
# Builds dist/logtrain_VERSION-REVISION_amd64.deb with dpkg-deb from
# packaging/debian and the static executable dist/logtrain (make binary):
# /usr/bin/logtrain, the systemd unit, /etc/logtrain/{logtrain.env,routes}
# as conffiles; the maintainer scripts make the logtrain system user and
# /var/lib/logtrain. Prints the path of the package. LOGTRAIN_DEB_REVISION
# (default 1) sets the Debian revision, LOGTRAIN_BINARY the executable.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${LOGTRAIN_BINARY:-dist/logtrain}
dist=${LOGTRAIN_DIST:-dist}
revision=${LOGTRAIN_DEB_REVISION:-1}
src=packaging/debian
[ -x "$binary" ] || { echo "build-deb: $binary is missing: make binary" >&2; exit 1; }
upstream=$("$binary" --version | awk '{print $2}')
version="$upstream-$revision"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/logtrain"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/etc/logtrain" \
  "$root/lib/systemd/system" "$root/usr/share/doc/logtrain" "$root/usr/share/lintian/overrides"
install -m 0755 "$binary" "$root/usr/bin/logtrain"
install -m 0644 "$src/logtrain.env" "$src/routes" "$root/etc/logtrain/"
install -m 0644 "$src/logtrain.service" "$root/lib/systemd/system/logtrain.service"
install -m 0644 "$src/copyright" "$root/usr/share/doc/logtrain/copyright"
install -m 0644 "$src/lintian-overrides" "$root/usr/share/lintian/overrides/logtrain"
# changelog.Debian, dated by the newest commit so that a rebuild is identical
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'logtrain (%s) unstable; urgency=medium\n\n  * Built from packaging/debian.\n\n -- logtrain developers <logtrain@example.org>  %s\n' \
  "$version" "$date" | gzip -9n >"$root/usr/share/doc/logtrain/changelog.Debian.gz"
chmod 0644 "$root/usr/share/doc/logtrain/changelog.Debian.gz"
install -m 0644 "$src/conffiles" "$root/DEBIAN/conffiles"
install -m 0755 "$src/postinst" "$src/prerm" "$src/postrm" "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@SIZE@/$size/" "$src/control" >"$root/DEBIAN/control"
(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"
mkdir -p "$dist"
out="$dist/logtrain_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
