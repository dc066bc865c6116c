// The storage API: stores, capsules, crates, publish and seal, through Promises.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { capsa, rejectsWithCode, tempDir, tempStore } from './helpers.mjs';

const ID = '656796239c1b981568180614';

test('disk calls return Promises, parsing is synchronous', async (t) => {
  const dir = tempDir(t);
  const pending = capsa.Store.init(path.join(dir, 's'));
  assert.ok(pending instanceof Promise);
  const store = await pending;
  const creating = store.createCapsule(ID);
  assert.ok(creating instanceof Promise);
  await creating;
  const listing = store.capsules();
  assert.ok(listing instanceof Promise);
  await listing;
  const capsule = await store.capsule(ID);
  assert.ok(capsule.latest() instanceof Promise);
  await capsule.latest();
  // Pure parsing answers at once.
  assert.equal(capsa.Sequence.parse('plate.1-3#.exr').count, 3);
  assert.equal(capsa.Version.parse('v7').padded(3), 'v007');
});

test('init, open, capsules, bump, crates, get, latest', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'show');
  const created = await capsa.Store.init(root, { padding: 4 });
  assert.equal(created.padding, 4);
  const store = await capsa.Store.open(root);
  assert.equal(store.root, root);
  assert.equal(store.padding, 4);

  const capsule = await store.createCapsule(ID);
  await store.createCapsule('sh010');
  assert.deepEqual((await store.capsules()).map((c) => c.id), [ID, 'sh010'].sort());
  assert.equal(capsule.id, ID);
  assert.equal(capsule.path, path.join(root, ID));
  assert.equal(await capsule.latest(), null);

  const v1 = await capsule.bump({ comment: 'layout', createdBy: 'ana', tags: ['a'] });
  assert.equal(v1.version, 'v0001');
  assert.equal(v1.number, 1);
  assert.equal(v1.capsuleId, ID);
  assert.equal(v1.path, path.join(root, ID, 'v0001'));
  const m = await v1.metadata();
  assert.equal(m.comment, 'layout');
  assert.equal(m.createdBy, 'ana');
  assert.deepEqual(m.tags, ['a']);
  assert.equal(m.published, false);
  assert.ok(!Number.isNaN(Date.parse(m.createdAt)));

  const v2 = await capsule.bump();
  assert.equal(v2.version, 'v0002');
  assert.equal((await v2.metadata()).parent, 'v0001');
  assert.deepEqual((await capsule.crates()).map((c) => c.version), ['v0001', 'v0002']);
  assert.equal((await capsule.get('v1')).version, 'v0001');
  assert.equal((await capsule.get(2)).version, 'v0002');
  assert.equal((await capsule.latest()).version, 'v0002');
  assert.equal(await capsule.latest({ published: true }), null);
});

test('concurrent bumps from JS get distinct versions', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule(ID);
  const crates = await Promise.all(Array.from({ length: 20 }, () => capsule.bump()));
  const numbers = crates.map((c) => c.number).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: 20 }, (_, i) => i + 1));
});

test('bump carries sections over and renames version tokens', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule(ID);
  const v1 = await capsule.bump();
  fs.writeFileSync(path.join(v1.section('scenes'), 'sh010_v001.ma'), 'scene');
  const v2 = await capsule.bump({ carryOver: ['scenes'] });
  assert.deepEqual(fs.readdirSync(v2.section('scenes')), ['sh010_v002.ma']);
});

test('publish a sequence, seal, latest published, sequences', async (t) => {
  const dir = tempDir(t);
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule(ID);
  const v1 = await capsule.bump();
  const renders = path.join(dir, 'renders');
  fs.mkdirSync(renders);
  for (const f of [1001, 1002, 1004]) fs.writeFileSync(path.join(renders, `plate.${f}.exr`), 'x');
  fs.writeFileSync(path.join(dir, 'review.mov'), 'mov');

  const published = await v1.publish(path.join(renders, 'plate.####.exr'));
  assert.ok(published.startsWith(v1.section('publishes')));
  await v1.publish(path.join(dir, 'review.mov'), 'final/review.mov');
  assert.ok(fs.existsSync(path.join(v1.section('publishes'), 'final', 'review.mov')));

  const seqs = await v1.sequences('publishes');
  const plate = seqs.find((s) => s.head.endsWith('plate.'));
  assert.ok(plate, `no plate sequence in ${seqs.map(String)}`);
  assert.equal(plate.frames.toString(), '1001-1002,1004');
  assert.equal(plate.missing().toString(), '1003');

  await v1.seal();
  assert.equal(await v1.isPublished(), true);
  assert.equal((await capsule.latest({ published: true })).version, 'v001');
  await rejectsWithCode(assert, () => v1.publish(path.join(dir, 'review.mov'), 'again.mov'), 'SEALED');
});

test('errors carry the stable code, and no errno of their own', async (t) => {
  const dir = tempDir(t);
  await rejectsWithCode(assert, () => capsa.Store.open(dir), 'INVALID_STORE');
  const store = await capsa.Store.init(path.join(dir, 'store'));
  await rejectsWithCode(assert, () => capsa.Store.init(path.join(dir, 'store')), 'ALREADY_EXISTS');
  const e = await rejectsWithCode(assert, () => store.capsule(ID), 'NOT_FOUND');
  // `errno` is Node's field for a system error number: capsa leaves it alone.
  assert.equal('errno' in e, false);
  await rejectsWithCode(assert, () => store.createCapsule('../etc'), 'INVALID_NAME');
  const capsule = await store.createCapsule(ID);
  await rejectsWithCode(assert, () => store.createCapsule(ID), 'ALREADY_EXISTS');
  await rejectsWithCode(assert, () => capsule.get('v9'), 'NOT_FOUND');
  await rejectsWithCode(assert, () => capsule.get('x1'), 'INVALID_VERSION');
  await rejectsWithCode(assert, () => capsule.bump({ carryOver: ['nope'] }), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => capsa.Store.init(path.join(dir, 'p'), { padding: 0 }), 'INVALID_ARGUMENT');
  const v1 = await capsule.bump();
  await rejectsWithCode(assert, () => v1.publish(path.join(dir, 'missing.exr')), 'NOT_FOUND');
  await rejectsWithCode(assert, () => capsa.findSequences(path.join(dir, 'nowhere')), 'IO');
  assert.deepEqual(capsa.errorCodes().slice(0, 3), ['NOT_FOUND', 'ALREADY_EXISTS', 'INVALID_NAME']);
});

test('fsck reports a clean store', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule(ID);
  await capsule.bump();
  const report = await store.fsck();
  assert.equal(report.capsules, 1);
  assert.equal(report.crates, 1);
  assert.equal(report.clean, true);
  assert.deepEqual(report.problems, []);
});

test('fsck(true) repairs what a killed write left and keeps the user files', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule(ID);
  const v1 = await capsule.bump();
  const publishes = path.join(capsule.path, 'v001', 'publishes');
  fs.writeFileSync(path.join(publishes, 'keep.exr'), 'pixels');
  const temp = path.join(publishes, '.capsa-tmp-killed');
  fs.writeFileSync(temp, 'half a file');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600 * 1000);
  fs.utimesSync(temp, twoHoursAgo, twoHoursAgo);

  const found = await store.fsck();
  assert.equal(found.clean, false);
  assert.deepEqual(found.problems.map((p) => [p.kind, p.repaired]), [['stale_temp', false]]);
  assert.ok(fs.existsSync(temp), 'fsck without repair changes nothing');

  const repaired = await store.fsck(true);
  assert.deepEqual(repaired.problems.map((p) => [p.kind, p.repaired]), [['stale_temp', true]]);
  assert.equal(repaired.clean, true);
  assert.ok(!fs.existsSync(temp));
  assert.equal(fs.readFileSync(path.join(publishes, 'keep.exr'), 'utf8'), 'pixels');
  assert.equal(v1.version, 'v001');
  assert.equal((await store.fsck()).clean, true);
});

test('a closed store, and every capsule and crate reached through it, refuses with a code', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule(ID);
  const v1 = await capsule.bump();
  assert.equal(store.closed, false);
  store.close();
  store.close(); // twice is harmless
  assert.equal(store.closed, true);
  assert.equal(store.root.length > 0 && capsule.id === ID && v1.version === 'v001', true); // names stay readable
  const refused = await rejectsWithCode(assert, () => store.capsules(), 'INVALID_ARGUMENT');
  assert.match(refused.message, /store: it is closed$/);
  const calls = [
    () => store.createCapsule('sh020'),
    () => store.capsule(ID),
    () => store.fsck(),
    () => store.retrieve(ID),
    () => store.restore(path.join(store.root, 'none.zip')),
    () => capsule.bump(),
    () => capsule.crates(),
    () => capsule.get(1),
    () => capsule.latest(),
    () => capsule.isOffline(),
    () => capsule.offlineStub(),
    () => capsule.takeOffline(path.join(store.root, 'none.zip')),
    () => capsa.archive(capsule, path.join(store.root, 'a.zip')),
    () => v1.metadata(),
    () => v1.publish(path.join(store.root, 'none.exr')),
    () => v1.seal(),
    () => v1.isPublished(),
    () => v1.sequences('publishes'),
  ];
  for (const call of calls) {
    await rejectsWithCode(assert, call, 'INVALID_ARGUMENT');
  }
    // The same directory opened again is a store of its own, open.
  const reopened = await capsa.Store.open(store.root);
  assert.deepEqual((await (await reopened.capsule(ID)).crates()).map((c) => c.version), ['v001']);
  assert.equal(fs.existsSync(path.join(store.root, ID, 'v002')), false, 'nothing was done after close');
});
