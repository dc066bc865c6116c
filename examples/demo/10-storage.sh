# Part of the capsa tour (sourced by demo.sh): the storage model.
step "A fresh store at $STORE"
run init

CAPSULE=656796239c1b981568180614   # an ObjectId from the production database
OTHER=65679623a11b9815681806ff
export CAPSULE
step "Capsules are named by their project-management ids"
run capsule create "$CAPSULE"
run capsule create "$OTHER"
run capsule list

step "Bump: allocate crates (safe with many writers at once)"
run bump "$CAPSULE" --comment "layout pass" --created-by demo
V1=$("$CAPSA" latest "$CAPSULE")
printf 'scene file for %s\n' "$V1" > "$STORE/$CAPSULE/$V1/scenes/sh010_$V1.ma"
echo "(wrote scenes/sh010_$V1.ma)"

step "A small frame sequence in artifacts, with a gap at 1004"
for f in 1001 1002 1003 1005 1006; do
  printf 'pixels %s\n' "$f" > "$STORE/$CAPSULE/$V1/artifacts/plate.$f.exr"
done
run seq "$STORE/$CAPSULE/$V1/artifacts"

step "Version up: bump carrying the scenes over, version tokens renamed"
run bump "$CAPSULE" --carry scenes --comment "animation pass" --created-by demo
V2=$("$CAPSA" latest "$CAPSULE")
ls "$STORE/$CAPSULE/$V2/scenes"

step "Publish a frame sequence (atomically, read-only) and a review movie, then seal"
for f in 1001 1002 1003 1004; do
  printf 'final %s\n' "$f" > "$WORK/comp.$f.exr"
done
printf 'movie\n' > "$WORK/review.mov"
run publish "$CAPSULE" "$V2" "$WORK/comp.####.exr"
run publish "$CAPSULE" "$V2" "$WORK/review.mov" --seal
ls -l "$STORE/$CAPSULE/$V2/publishes" "$STORE/$CAPSULE/$V2/publishes/comp"

step "A sealed crate refuses further publishes"
run publish "$CAPSULE" "$V2" "$WORK/review.mov" again.mov || echo "(refused, as it should be)"

step "A newer crate; latest vs latest published"
run bump "$CAPSULE" --comment "lighting pass" --created-by demo
run crates "$CAPSULE"
run latest "$CAPSULE"
run latest "$CAPSULE" --published
run latest "$CAPSULE" --published --json

step "fsck: the store is consistent"
run fsck
