#!/usr/bin/env bash
# Peak RSS of `capsa archive` on a capsule holding one 6 GiB (sparse) file.
# Needs /usr/bin/time (Debian package `time`). Usage: benches/archive_memory.sh [SIZE_BYTES]
# Prints one line per policy: "policy=... max_rss_kib=... seconds=... archive_bytes=..."
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-$((6 << 30))}
[ -x /usr/bin/time ] || { echo "archive_memory: /usr/bin/time is missing (apt-get install time)" >&2; exit 1; }
cargo build --release -q -p capsa-cli -p capsa-benches --bin capsa --bin archive_fixture
BIN=target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/capsa-mem.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
"$BIN/archive_fixture" "$WORK/store" big --sparse huge.bin "$SIZE"
for policy in deflate store; do
  out="$WORK/big-$policy.zip"
  /usr/bin/time -v "$BIN/capsa" --store "$WORK/store" archive big -o "$out" --policy "$policy" \
    >/dev/null 2>"$WORK/time.txt"
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.txt")
  echo "policy=$policy file_bytes=$SIZE max_rss_kib=$rss wall=$secs archive_bytes=$(stat -c %s "$out")"
  if [ "$rss" -ge $((256 * 1024)) ]; then
    echo "archive_memory: peak RSS ${rss} KiB is over the 256 MiB bound" >&2
    exit 1
  fi
  rm -f "$out"
done
