#!/usr/bin/env bash
# Makes a local stand-in for node:20-bookworm-slim when no image registry is reachable: a minimal
# Debian bookworm (debootstrap, from Debian's package mirror) plus this machine's node and npm,
# imported into Docker as postern-base:local (or the tag given). Then:
#
#   deploy/base-image.sh
#   docker build --build-arg NODE_IMAGE=postern-base:local -t postern:0.1.0 .
#
# Contract:
#   - Needs root (debootstrap), docker, and a node whose binary runs on bookworm's glibc (checked
#     inside the new root before anything is imported).
#   - The root filesystem is cached as a tarball under $POSTERN_CACHE_DIR (default
#     /var/cache/postern-test), one per node version, because debootstrap takes minutes; a later
#     run imports the tarball in seconds. An image that already carries this node version's label
#     is left alone (exit 0, nothing done). Delete the tarball to start over.
#   - Copies node and npm only: no headers, so native addons would not build in
#     it (Postern has none). Nothing from this machine's npm configuration comes along.
# Environment: POSTERN_CACHE_DIR, DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

tag=${1:-postern-base:local}
cache=${POSTERN_CACHE_DIR:-/var/cache/postern-test}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
node_bin=$(readlink -f "$(command -v node)")
prefix=$(dirname "$(dirname "$node_bin")")
version=$("$node_bin" --version)
tarball="$cache/base-bookworm-node-$version.tar"
label=org.postern.base.node

if [ "$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$tag" 2>/dev/null)" = "$version" ]; then
  echo "$tag already holds node $version"
  exit 0
fi

if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  [ -d "$prefix/lib/node_modules/npm" ] || { echo "no npm beside $node_bin (looked in $prefix/lib/node_modules/npm)" >&2; exit 1; }
  mkdir -p "$cache"
  root=$(mktemp -d "$cache/rootfs.XXXXXX")
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm into $root (takes a few minutes)"
  # passwd: the Dockerfile's groupadd/useradd, as in the official node images.
  debootstrap --variant=minbase --include=passwd bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
    { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  # Where the official node images keep them, so the image looks the same to the Dockerfile.
  install -D -m 0755 "$node_bin" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$prefix/lib/node_modules/npm" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # A clean environment: this machine's NODE_OPTIONS or NODE_EXTRA_CA_CERTS mean nothing in there.
  chroot "$root" /usr/bin/env -i /usr/local/bin/node -e 'process.exit(0)' ||
    { echo "$node_bin does not run in bookworm (above: why; a newer glibc than bookworm's?)" >&2; exit 1; }
  # Package downloads and indexes are of no use in an image without apt sources of its own.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi

docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "LABEL $label=$version" \
  --change 'CMD ["node"]' \
  --message "debootstrap bookworm minbase + node $version" \
  "$tarball" "$tag" >/dev/null
echo "$tag: bookworm + node $version (from $tarball)"
