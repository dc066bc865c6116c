#!/usr/bin/env bash
# Archive, verify and restore throughput of capsa against the usual tools, on one capsule:
# N_BIG incompressible files of BIG_BYTES plus N_SMALL small text files.
#
#   benches/archive_compare.sh [N_BIG [BIG_BYTES [N_SMALL]]]     (default 200 8MiB 2000)
#
# Each figure is one run, page cache warm (the capsule is read once before timing).
# Needs: zip unzip python3 tar bc /usr/bin/time (Debian: zip unzip python3 tar bc time).
# Wall-clock ratios are what the targets speak of; CPU seconds are printed too, since on a
# shared machine wall time depends on what else runs.
set -euo pipefail
cd "$(dirname "$0")/.."
N_BIG=${1:-200}
BIG_BYTES=${2:-$((8 << 20))}
N_SMALL=${3:-2000}
for t in zip unzip python3 tar bc /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "archive_compare: $t is missing" >&2; exit 1; }
done
cargo build --release -q -p capsa-cli -p capsa-benches --bin capsa --bin archive_fixture
BIN=$PWD/target/release
WORK=$(mktemp -d "${TMPDIR:-/tmp}/capsa-cmp.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ID=bench
"$BIN/archive_fixture" "$WORK/store" "$ID" --noise "$N_BIG" "$BIG_BYTES" --text "$N_SMALL" 4096
cat "$WORK"/store/$ID/v001/*/* "$WORK"/store/$ID/v001/scenes/*/* >/dev/null 2>&1 || true
TOTAL=$(du -sb --apparent-size "$WORK/store/$ID" | cut -f1)

declare -A T S C
timed() { # name, command...: wall seconds in T, user+system CPU seconds in C
  local name=$1; shift
  sync
  /usr/bin/time -f '%e %U %S' -o "$WORK/time.txt" "$@" >/dev/null 2>&1
  read -r wall user sys <"$WORK/time.txt"
  T[$name]=$wall
  C[$name]=$(echo "$user + $sys" | bc -l)
}
size() { S[$1]=$(stat -c %s "$2"); }

PYZIP='import os, sys, zipfile
method = zipfile.ZIP_STORED if sys.argv[1] == "stored" else zipfile.ZIP_DEFLATED
with zipfile.ZipFile(sys.argv[2], "w", method, compresslevel=6) as z:
    for d, dirs, files in os.walk(sys.argv[3]):
        dirs.sort()
        z.write(d)
        for f in sorted(files):
            z.write(os.path.join(d, f))'

cd "$WORK/store"
timed capsa_store "$BIN/capsa" --store . archive $ID -o "$WORK/capsa-store.zip" --policy store
size capsa_store "$WORK/capsa-store.zip"
timed capsa_deflate "$BIN/capsa" --store . archive $ID -o "$WORK/capsa-deflate.zip" --policy deflate
size capsa_deflate "$WORK/capsa-deflate.zip"
timed capsa_store_nv "$BIN/capsa" --store . archive $ID -o "$WORK/capsa-store-nv.zip" --policy store --no-verify
size capsa_store_nv "$WORK/capsa-store-nv.zip"
timed capsa_deflate_nv "$BIN/capsa" --store . archive $ID -o "$WORK/capsa-deflate-nv.zip" --policy deflate --no-verify
size capsa_deflate_nv "$WORK/capsa-deflate-nv.zip"
rm -f "$WORK/capsa-store-nv.zip" "$WORK/capsa-deflate-nv.zip"
timed zip0 zip -0 -r -q "$WORK/zip0.zip" $ID
size zip0 "$WORK/zip0.zip"
timed zip6 zip -6 -r -q "$WORK/zip6.zip" $ID
size zip6 "$WORK/zip6.zip"
timed py_stored python3 -c "$PYZIP" stored "$WORK/py-stored.zip" $ID
size py_stored "$WORK/py-stored.zip"
timed py_deflated python3 -c "$PYZIP" deflated "$WORK/py-deflated.zip" $ID
size py_deflated "$WORK/py-deflated.zip"
timed tar tar -cf "$WORK/t.tar" $ID
size tar "$WORK/t.tar"
timed capsa_verify_deflate "$BIN/capsa" verify "$WORK/capsa-deflate.zip"
timed unzip_t_deflate unzip -tq "$WORK/capsa-deflate.zip"
timed capsa_verify_store "$BIN/capsa" verify "$WORK/capsa-store.zip"
timed unzip_t_store unzip -tq "$WORK/capsa-store.zip"
mkdir -p "$WORK/r1" "$WORK/r2"
"$BIN/archive_fixture" "$WORK/r1/store" placeholder >/dev/null
timed capsa_restore "$BIN/capsa" --store "$WORK/r1/store" restore "$WORK/capsa-deflate.zip"
timed unzip_x unzip -q "$WORK/capsa-deflate.zip" -d "$WORK/r2"
cd - >/dev/null

ratio() { echo "scale=2; $1 / $2" | bc -l; }
printf 'capsule: %d x %d B incompressible + %d x 4 KiB text = %d bytes\n' \
  "$N_BIG" "$BIG_BYTES" "$N_SMALL" "$TOTAL"
printf '%-22s %9s %9s %14s %9s\n' tool wall_s cpu_s bytes MB/s
for k in capsa_store capsa_store_nv zip0 py_stored tar capsa_deflate capsa_deflate_nv zip6 py_deflated; do
  printf '%-22s %9.2f %9.2f %14d %9.0f\n' "$k" "${T[$k]}" "${C[$k]}" "${S[$k]}" "$(echo "$TOTAL / ${T[$k]} / 1000000" | bc -l)"
done
for k in capsa_verify_deflate unzip_t_deflate capsa_verify_store unzip_t_store capsa_restore unzip_x; do
  printf '%-22s %9.2f %9.2f %14s %9.0f\n' "$k" "${T[$k]}" "${C[$k]}" - "$(echo "$TOTAL / ${T[$k]} / 1000000" | bc -l)"
done
echo
echo "store:   capsa vs zip -0 -r       $(ratio "${T[zip0]}" "${T[capsa_store]}")x faster (target >= 1.5)"
echo "store:   capsa vs python stored   $(ratio "${T[py_stored]}" "${T[capsa_store]}")x faster"
echo "store:   capsa / tar -cf time     $(ratio "${T[capsa_store]}" "${T[tar]}") (target <= 1.3); without the verify pass $(ratio "${T[capsa_store_nv]}" "${T[tar]}")"
echo "store:   capsa --no-verify vs zip -0 $(ratio "${T[zip0]}" "${T[capsa_store_nv]}")x faster"
echo "deflate: capsa vs zip -6 -r       $(ratio "${T[zip6]}" "${T[capsa_deflate]}")x faster (target >= 1.8)"
echo "deflate: capsa --no-verify vs zip -6 $(ratio "${T[zip6]}" "${T[capsa_deflate_nv]}")x faster"
echo "deflate: capsa vs python deflated $(ratio "${T[py_deflated]}" "${T[capsa_deflate]}")x faster"
echo "deflate: size capsa / zip -6      $(ratio "${S[capsa_deflate]}" "${S[zip6]}") (target <= 1.03)"
echo "verify:  capsa vs unzip -t        $(ratio "${T[unzip_t_deflate]}" "${T[capsa_verify_deflate]}")x faster deflated, $(ratio "${T[unzip_t_store]}" "${T[capsa_verify_store]}")x stored (target >= 1.5)"
echo "restore: capsa vs unzip           $(ratio "${T[unzip_x]}" "${T[capsa_restore]}")x faster"
echo "(capsa archive times include its own verify pass before the rename into place unless --no-verify)"
