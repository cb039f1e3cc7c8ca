#!/usr/bin/env bash
# Copies the OpenAPI viewer the gateway serves at /docs (swagger-ui-dist, at
# the version package-lock.json pins) from the npm registry into assets/,
# which the gateway embeds: nothing is fetched when /docs is served. Run by
# `make docs-assets`; commit the result. Only the files the page loads are
# copied, without their source-map comments (the maps are not shipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$here/package.json" "$here/package-lock.json" "$tmp/"
# --ignore-scripts: swagger-ui-dist's dependency runs an analytics
# postinstall; the files need no install step.
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
src=$tmp/node_modules/swagger-ui-dist
rm -rf "$here/assets"
mkdir -p "$here/assets"
for f in swagger-ui-bundle.js swagger-ui.css; do
	grep -v 'sourceMappingURL=' "$src/$f" >"$here/assets/$f"
done
cp "$src/LICENSE" "$src/NOTICE" "$src/favicon-32x32.png" "$here/assets/"
node -p "require('$src/package.json').version" >"$here/assets/VERSION"
echo "assets/: swagger-ui-dist $(cat "$here/assets/VERSION")"
