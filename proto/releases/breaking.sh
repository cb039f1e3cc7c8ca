#!/usr/bin/env bash
# breaking.sh [ROOT]: fail when the contracts of ROOT (default: this
# repository) break the last release's, proto/releases/v1.0.0.binpb. `make
# breaking` runs it, and CI with it.
#
# The release is compared as an image, not as a git ref: CI's clone may have
# no tags or history. buf compares two images module by module, and an image
# holds one, so the working tree is built into an image too, of
# proto/bankbridge alone (the vendored protos are its imports, and
# --exclude-imports leaves them out, as buf.yaml's breaking ignore does). buf
# reads no module's settings from buf.yaml for an image, so the rules are
# passed here: FILE, the ones buf.yaml's proto module names; change both
# together.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "${1:-$here/../..}" && pwd)
release=${RELEASE_IMAGE:-$here/v1.0.0.binpb}
buf=${BUF:-buf}
# A path to buf (bin/buf) must still work after the cd below.
case $buf in */*) buf=$(cd "$(dirname "$buf")" && pwd)/$(basename "$buf") ;; esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$root" && "$buf" build --path proto/bankbridge --exclude-source-info -o "$tmp/current.binpb")
"$buf" breaking "$tmp/current.binpb" --against "$release" --exclude-imports \
	--config '{"version":"v2","breaking":{"use":["FILE"]}}'
echo "breaking: the contracts in $root are compatible with $(basename "$release")"
