// Archiving: a capsule as one verified zip, verify, restore, offline and back; progress,
// cancellation through an AbortSignal, and an event loop that keeps serving timers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { worstTimerLag, capsa, rejectsWithCode, tempDir } from './helpers.mjs';

async function capsuleWithFiles(t, { files = 3, bytes = 1000 } = {}) {
  const dir = tempDir(t);
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule('sh010');
  const v1 = await capsule.bump({ comment: 'layout' });
  const line = 'frame data that compresses well enough to keep deflate busy\n';
  const chunk = Buffer.from(line.repeat(Math.ceil(Math.min(bytes, 1 << 20) / line.length))).subarray(0, Math.min(bytes, 1 << 20));
  for (let i = 0; i < files; i++) {
    const file = path.join(v1.section('artifacts'), `cache_${i}.txt`);
    const fd = fs.openSync(file, 'w');
    for (let done = 0; done < bytes; done += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - done));
    fs.closeSync(fd);
  }
  return { dir, store, capsule, v1 };
}

test('archive, verify, restore elsewhere, offline and back', async (t) => {
  const { dir, store, capsule } = await capsuleWithFiles(t);
  const progress = [];
  const zip = path.join(dir, 'sh010.zip');
  const report = await capsa.archive(capsule, zip, { onProgress: (p) => progress.push(p) });
  assert.equal(report.capsule, 'sh010');
  assert.equal(report.files >= 3, true);
  assert.equal(report.verified, true);
  assert.equal(report.path, zip);
  assert.ok(fs.statSync(zip).size > 0);
  assert.ok(progress.length > 0, 'no progress reported');
  const last = progress[progress.length - 1];
  assert.equal(last.filesDone, last.filesTotal);

  const checked = await capsa.verify(zip, { archiveSha256: true });
  assert.equal(checked.capsule, 'sh010');
  assert.match(checked.archiveSha256, /^[0-9a-f]{64}$/);

  await rejectsWithCode(assert, () => capsa.archive(capsule, zip), 'ALREADY_EXISTS');
  await rejectsWithCode(assert, () => store.restore(zip), 'ALREADY_EXISTS');
  const other = await capsa.Store.init(path.join(dir, 'other'));
  const restored = await other.restore(zip);
  assert.equal(restored.id, 'sh010');
  assert.deepEqual((await restored.crates()).map((c) => c.version), ['v001']);

  assert.equal(await capsule.offlineStub(), null);
  const stub = await capsule.takeOffline(zip);
  assert.equal(stub.capsule, 'sh010');
  assert.equal(await capsule.isOffline(), true);
  assert.deepEqual(await capsule.offlineStub(), stub);
  const back = await store.retrieve('sh010');
  assert.equal(await back.isOffline(), false);
  assert.equal(await back.offlineStub(), null);
  assert.equal((await back.latest()).version, 'v001');
});

test('verify names a damaged archive CORRUPT; a missing one NOT_FOUND', async (t) => {
  const { dir, capsule } = await capsuleWithFiles(t);
  const zip = path.join(dir, 'sh010.zip');
  await capsa.archive(capsule, zip, { policy: 'store' });
  const bytes = fs.readFileSync(zip);
  const at = bytes.indexOf(Buffer.from('frame data'));
  bytes[at] ^= 0xff;
  fs.writeFileSync(zip, bytes);
  await rejectsWithCode(assert, () => capsa.verify(zip), 'CORRUPT');
  await rejectsWithCode(assert, () => capsa.verify(path.join(dir, 'nope.zip')), 'NOT_FOUND');
  await rejectsWithCode(assert, () => capsa.archive(capsule, path.join(dir, 'x.zip'), { policy: 'lzma' }), 'INVALID_ARGUMENT');
});

test('while a large capsule is archived the event loop keeps serving timers', async (t) => {
  const { dir, capsule } = await capsuleWithFiles(t, { files: 8, bytes: 8 << 20 });
  let n = 0;
  // A call that blocked the main thread would let no 5 ms tick fire before it settles; the
  // lag itself is a figure for `make bench-node`, not an assertion.
  const { ticks } = await worstTimerLag(() =>
    capsa.archive(capsule, path.join(dir, `big${n++}.zip`), { policy: 'deflate' }),
  );
  assert.ok(ticks >= 3, `only ${ticks} timer ticks fired while 64 MiB were archived`);
});

test('an AbortSignal cancels a running archive with CANCELLED and leaves nothing behind', async (t) => {
  const { dir, capsule } = await capsuleWithFiles(t, { files: 8, bytes: 8 << 20 });
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const zip = path.join(out, 'big.zip');
  const controller = new AbortController();
  let progressed = 0;
  const running = capsa.archive(capsule, zip, {
    policy: 'deflate',
    signal: controller.signal,
    onProgress: () => {
      progressed += 1;
      if (progressed === 1) controller.abort();
    },
  });
  await rejectsWithCode(assert, () => running, 'CANCELLED');
  assert.ok(progressed >= 1);
  assert.deepEqual(fs.readdirSync(out), []);

  const already = AbortSignal.abort();
  await rejectsWithCode(assert, () => capsa.archive(capsule, zip, { signal: already }), 'CANCELLED');
  assert.deepEqual(fs.readdirSync(out), []);
});

test('s3:// URLs go through to core: malformed ones are refused, an unreachable endpoint is IO', async (t) => {
  const { capsule } = await capsuleWithFiles(t, { files: 1 });
  for (const bad of ['s3://', 's3://bucket-only', 's3://b/', 's3://b/a//x.zip', 'gs://b/x.zip']) {
    await rejectsWithCode(assert, () => capsa.archive(capsule, bad), 'INVALID_ARGUMENT');
    await rejectsWithCode(assert, () => capsa.verify(bad), 'INVALID_ARGUMENT');
  }
  process.env.CAPSA_S3_MAX_RETRIES = '0';
  try {
    await rejectsWithCode(assert, () => capsa.verify('s3://b/x.zip?endpoint=http://127.0.0.1:9'), 'IO');
  } finally {
    delete process.env.CAPSA_S3_MAX_RETRIES;
  }
  assert.equal(await capsule.isOffline(), false);
});

test('a crate being made is left out of the archive and named in report.skipped', async (t) => {
  const { dir, store, capsule } = await capsuleWithFiles(t);
  const half = path.join(capsule.path, 'v002');
  fs.mkdirSync(path.join(half, 'scenes'), { recursive: true });
  fs.writeFileSync(path.join(half, '.capsa-incomplete'), 'pid 1');
  const zip = path.join(dir, 'live.zip');
  const report = await capsa.archive(capsule, zip);
  assert.deepEqual(report.skipped, ['v002']);
  assert.equal(report.verified, true);
  const other = await capsa.Store.init(path.join(dir, 'other'));
  const restored = await other.restore(zip);
  assert.ok(fs.existsSync(path.join(restored.path, 'v001')));
  assert.ok(!fs.existsSync(path.join(restored.path, 'v002')), 'a crate being made was archived');
});
