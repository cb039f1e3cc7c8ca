#!/usr/bin/env bash
# breaking_test.sh: proves that breaking.sh (what `make breaking` and CI run)
# fails on a breaking change and passes an additive one, on copies of the
# contracts in a temporary directory:
#   - the contracts as they are: compatible;
#   - a field renamed (Account.display_name): refused, naming the field;
#   - a file renamed within its package: refused (the FILE rules: generated
#     code's import paths change, though the wire does not);
#   - a field added: compatible.
# Run from anywhere; BUF names the buf binary (default: bin/buf, then buf).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${BUF:-}" ]; then
	BUF=$root/bin/buf
	[ -x "$BUF" ] || BUF=buf
fi
export BUF

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# check NAME WANT_EXIT WANT_TEXT EDIT...: copy the contracts, apply EDIT, run
# breaking.sh, and compare its exit status and output.
check() {
	local name=$1 want_exit=$2 want_text=$3
	shift 3
	local dir=$tmp/$name
	mkdir -p "$dir"
	cp -R "$root/proto" "$root/buf.yaml" "$dir/"
	(cd "$dir" && "$@")
	local out status=0
	out=$("$here/breaking.sh" "$dir" 2>&1) || status=$?
	if [ "$status" != "$want_exit" ] || ! grep -qF -- "$want_text" <<<"$out"; then
		echo "FAIL $name: exit $status, want $want_exit with \"$want_text\"; output:" >&2
		echo "$out" >&2
		failed=1
		return
	fi
	echo "ok   $name: exit $status, \"$want_text\""
}

balance=proto/bankbridge/balance/v1/balance.proto
check unchanged 0 "compatible with v1.0.0.binpb" true
# buf breaking exits 100 when it finds a breaking change.
check field-renamed 100 'Field "4" on message "Account" changed name from "display_name" to "label".' \
	sed -i 's/^  string display_name = 4 /  string label = 4 /' "$balance"
check file-renamed 100 'Previously present file "bankbridge/balance/v1/balance.proto" was deleted.' \
	mv "$balance" proto/bankbridge/balance/v1/balance_api.proto
check field-added 0 "compatible with v1.0.0.binpb" \
	sed -i 's/^  string display_name = 4 \(.*\)$/  string display_name = 4 \1\n  \/\/ nickname is a new field.\n  string nickname = 99;/' "$balance"

exit $failed
