#!/usr/bin/env bash
# Builds the container image of packaging/Containerfile with buildah: no
# Docker daemon, no root-only storage driver (vfs, chroot isolation), so it
# works in a plain VM or CI runner. A manual packaging check, not part of
# .ci/run.
#
#   scripts/build-image.sh                 # the whole Containerfile: compiles in the rust image
#   scripts/build-image.sh --prebuilt      # the runtime stage only, around this machine's
#                                          # release build (target/release), for when the
#                                          # rust image cannot be pulled or a build there
#                                          # would take too long
#   scripts/build-image.sh --prebuilt --base localhost/debian:bookworm-slim
#                                          # ... on a base image made here (see --debootstrap)
#   scripts/build-image.sh --debootstrap   # makes localhost/debian:bookworm-slim from
#                                          # deb.debian.org with debootstrap, for a machine
#                                          # that reaches Debian's mirror but no registry
#
# The image is tagged localhost/cascade:dev (CASCADE_IMAGE_TAG to change).
# Needs buildah (apt-get install buildah; debootstrap for --debootstrap).
# Then, for example:
#   buildah --storage-driver vfs from --name c localhost/cascade:dev
#   buildah --storage-driver vfs run --isolation chroot c -- /usr/bin/cascade --version
set -euo pipefail

cd "$(dirname "$0")/.."
tag=${CASCADE_IMAGE_TAG:-localhost/cascade:dev}
buildah=(buildah --storage-driver vfs)
prebuilt=false
base=""
debootstrap=false
while [ $# -gt 0 ]; do
    case "$1" in
        --prebuilt) prebuilt=true ;;
        --base) base=${2:?--base needs an image name}; shift ;;
        --debootstrap) debootstrap=true ;;
        *) echo "build-image.sh: unknown option $1 (see the top of scripts/build-image.sh)" >&2; exit 2 ;;
    esac
    shift
done
command -v buildah >/dev/null 2>&1 || {
    echo "build-image.sh: buildah is not installed; apt-get install buildah" >&2
    exit 1
}

if $debootstrap; then
    command -v debootstrap >/dev/null 2>&1 || {
        echo "build-image.sh: debootstrap is not installed; apt-get install debootstrap" >&2
        exit 1
    }
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
    container=$("${buildah[@]}" from scratch)
    mount=$("${buildah[@]}" mount "$container")
    cp -a "$rootfs"/. "$mount"/
    "${buildah[@]}" umount "$container"
    "${buildah[@]}" commit --rm "$container" localhost/debian:bookworm-slim
    echo "made localhost/debian:bookworm-slim"
    exit 0
fi

if ! $prebuilt; then
    "${buildah[@]}" bud --isolation chroot -f packaging/Containerfile -t "$tag" .
    echo "built $tag"
    exit 0
fi

# The runtime stage of packaging/Containerfile (from its second FROM on),
# fed this machine's release build instead of the build stage's.
plugins=(file email telegram discord teams)
packages=(-p cascade)
for p in "${plugins[@]}"; do packages+=(-p "cascade-plugin-$p"); done
cargo build --release --locked "${packages[@]}"
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/out/plugins"
cp target/release/cascade "$context/out/"
for p in "${plugins[@]}"; do
    cp "target/release/libcascade_plugin_$p.so" "$context/out/plugins/"
done
awk 'seen { print } /^FROM / { n++ } n == 2 && !seen { seen = 1; print }' packaging/Containerfile \
    | sed -e 's|COPY --from=build /out/|COPY out/|' >"$context/Containerfile"
grep -q '^COPY out/cascade ' "$context/Containerfile" || {
    echo "build-image.sh: packaging/Containerfile's runtime stage no longer copies /out/cascade; update this script" >&2
    exit 1
}
if [ -n "$base" ]; then
    sed -i -e "0,/^FROM .*/s||FROM $base|" "$context/Containerfile"
fi
"${buildah[@]}" bud --isolation chroot -f "$context/Containerfile" -t "$tag" "$context"
echo "built $tag from the release build in target/release"
