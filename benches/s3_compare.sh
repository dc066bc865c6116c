#!/usr/bin/env bash
# Archive-to-bucket throughput against archive-to-local-disk plus a separate upload (aws CLI),
# on a real MinIO server on loopback (tests/minio/with-minio.sh starts and stops it).
#
#   benches/s3_compare.sh [N_BIG [BIG_BYTES [N_SMALL]]]     (default 64 8MiB 500)
#
# One run each, page cache warm. Prints a markdown table: wall seconds and MB/s of capsule
# content, peak RSS. Standalone: not part of `make bench`'s report.
# Needs: go (MinIO build), aws CLI (installed by with-minio.sh if missing), bc, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CAPSA_TEST_S3_BUCKET:-}" ]; then
  exec bash tests/minio/with-minio.sh bash "$0" "$@"
fi
N_BIG=${1:-64}
BIG_BYTES=${2:-$((8 << 20))}
N_SMALL=${3:-500}
cargo build --release -q -p capsa-cli -p capsa-benches --bin capsa --bin archive_fixture
BIN=$PWD/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/capsa-s3cmp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ID=bench
"$BIN/archive_fixture" "$WORK/store" "$ID" --noise "$N_BIG" "$BIG_BYTES" --text "$N_SMALL" 4096 >/dev/null
cat "$WORK"/store/$ID/v001/*/* >/dev/null 2>&1 || true
TOTAL=$(du -sb --apparent-size "$WORK/store/$ID" | cut -f1)
AWS=("$CAPSA_TEST_AWS" --endpoint-url "$AWS_ENDPOINT_URL")
B="s3://$CAPSA_TEST_S3_BUCKET/bench"

declare -A T M
timed() { # name, command...: wall seconds in T, peak RSS (MiB) in M
  local name=$1; shift
  sync
  /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$@" >/dev/null 2>&1 \
    || { echo "s3_compare: $name failed: $*" >&2; exit 1; }
  read -r wall rss <"$WORK/time.txt"
  T[$name]=$wall
  M[$name]=$((rss / 1024))
}
cd "$WORK/store"
for policy in store auto; do
  timed "local_$policy" "$BIN/capsa" --store . archive $ID -o "$WORK/$policy.zip" --policy $policy
  timed "upload_$policy" "${AWS[@]}" s3 cp --quiet "$WORK/$policy.zip" "$B/cp-$policy.zip"
  timed "bucket_$policy" "$BIN/capsa" --store . archive $ID -o "$B/$policy.zip" --policy $policy
  timed "bucket_nv_$policy" "$BIN/capsa" --store . archive $ID -o "$B/nv-$policy.zip" --policy $policy --no-verify
  timed "verify_local_$policy" "$BIN/capsa" verify "$WORK/$policy.zip"
  timed "verify_bucket_$policy" "$BIN/capsa" verify "$B/$policy.zip"
  rm -f "$WORK/$policy.zip"
done
mbs() { echo "scale=0; $TOTAL / $1 / 1000000" | bc -l; }
row() { printf '| %s | %.2f s | %s MB/s | %s |\n' "$1" "$2" "$(mbs "$2")" "${3:-}"; }
echo
echo "Capsule: $N_BIG × $BIG_BYTES B noise + $N_SMALL × 4 KiB text = $TOTAL bytes; MinIO on loopback, one drive in ${TMPDIR:-/tmp}."
echo
echo "| what | wall | content throughput | peak RSS |"
echo "| --- | --- | --- | --- |"
for policy in store auto; do
  row "archive → local disk ($policy, verified)" "${T[local_$policy]}" "${M[local_$policy]} MiB"
  row "  + aws s3 cp of that zip" "${T[upload_$policy]}"
  row "  = local archive then upload" "$(echo "${T[local_$policy]} + ${T[upload_$policy]}" | bc -l)"
  row "archive → bucket ($policy, verified by ranged reads)" "${T[bucket_$policy]}" "${M[bucket_$policy]} MiB"
  row "archive → bucket ($policy, --no-verify)" "${T[bucket_nv_$policy]}" "${M[bucket_nv_$policy]} MiB"
  row "verify local ($policy)" "${T[verify_local_$policy]}" "${M[verify_local_$policy]} MiB"
  row "verify in the bucket ($policy)" "${T[verify_bucket_$policy]}" "${M[verify_bucket_$policy]} MiB"
done
