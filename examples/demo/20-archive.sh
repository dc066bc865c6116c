# Demo step: archive a capsule, verify it, take it offline, retrieve it, show it intact.
#
# Sourced by the main demo script with:
#   $CAPSA    the capsa binary
#   $STORE    a temporary store holding capsules with crates and files
#   $CAPSULE  the id of one of them

: "${CAPSA:?}" "${STORE:?}" "${CAPSULE:?}"

# The tour's `step` heading when there is one, a plain heading otherwise.
demo_step() {
    if declare -F step >/dev/null; then step "$@"; else printf '\n== %s ==\n' "$*"; fi
}

demo_tree_sums() {
    (cd "$STORE/$CAPSULE" && find . -path ./.capsa -prune -o -type f -print0 | sort -z |
        xargs -0 sha256sum)
}

ARCHIVE_DIR="$(mktemp -d)"
ARCHIVE="$ARCHIVE_DIR/$CAPSULE.zip"
BEFORE="$(demo_tree_sums)"

demo_step "archive: capsule $CAPSULE into one zip"
"$CAPSA" --store "$STORE" archive "$CAPSULE" -o "$ARCHIVE" --policy auto

demo_step "verify: structure, every CRC-32, the SHA-256 manifest"
"$CAPSA" verify "$ARCHIVE"
if command -v unzip >/dev/null; then unzip -l "$ARCHIVE" | tail -n 4; fi

demo_step "offline: content removed, a stub left behind"
"$CAPSA" --store "$STORE" offline "$CAPSULE" "$ARCHIVE"
ls -A "$STORE/$CAPSULE"
cat "$STORE/$CAPSULE/.capsa/offline.json"

demo_step "retrieve: verified, restored into place"
"$CAPSA" --store "$STORE" retrieve "$CAPSULE"

demo_step "intact: every file hashes as before"
AFTER="$(demo_tree_sums)"
if [ "$BEFORE" = "$AFTER" ]; then
    echo "intact: $(printf '%s\n' "$AFTER" | grep -c .) files identical"
else
    echo "MISMATCH after retrieve" >&2
    diff <(printf '%s\n' "$BEFORE") <(printf '%s\n' "$AFTER") >&2
    false
fi
rm -rf "$ARCHIVE_DIR"
