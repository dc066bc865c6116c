// Misuse gives errors with codes, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import { capsa, rejectsWithCode, tempDir, tempStore } from './helpers.mjs';

/** `fn` throws or rejects with an `Error` carrying a non-empty string `code`. */
async function failsWithSomeCode(fn) {
  let caught;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected an Error, got ${caught}`);
  assert.equal(typeof caught.code, 'string', `no code on: ${caught.message}`);
  assert.ok(caught.code.length > 0);
  return caught;
}

test('wrong argument types are refused with a code', async (t) => {
  const store = await tempStore(t);
  const capsule = await store.createCapsule('sh010');
  // Type errors found while converting arguments carry napi's status as their code.
  assert.equal((await failsWithSomeCode(() => store.capsule(42))).code, 'StringExpected');
  await failsWithSomeCode(() => store.createCapsule(undefined));
  await failsWithSomeCode(() => capsule.bump({ comment: 5 }));
  await failsWithSomeCode(() => capsule.bump({ carryOver: 'scenes' }));
  await failsWithSomeCode(() => capsule.get({}));
  await failsWithSomeCode(() => capsa.sequencesIn('a.0001.exr'));
  await failsWithSomeCode(() => capsa.sequencesIn([1, 2]));
  await failsWithSomeCode(() => capsa.Sequence.parse(null));
  await failsWithSomeCode(() => capsa.Store.init(path.join(tempDir(t), 'x'), { padding: 'four' }));
  // Values of the right type that break a rule get capsa's own codes.
  await rejectsWithCode(assert, () => capsule.get(0), 'INVALID_VERSION');
  // JS numbers are range-checked, never wrapped (-1 is not v4294967295).
  await rejectsWithCode(assert, () => capsule.get(-1), 'INVALID_VERSION');
  await rejectsWithCode(assert, () => capsa.Version.fromNumber(-1), 'INVALID_VERSION');
  await rejectsWithCode(assert, () => capsa.Version.parse('v1').padded(-1), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => capsa.Version.parse('v1').padded(1e9), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => capsa.Store.init(path.join(tempDir(t), 'y'), { padding: -1 }), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => capsule.bump({ carryOver: ['attic'] }), 'INVALID_ARGUMENT');
  assert.throws(() => capsa.Sequence.parse('x.#.exr').format('tiff'), (e) => e.code === 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => store.createCapsule(''), 'INVALID_NAME');
  await rejectsWithCode(assert, () => store.createCapsule('a\u0000b'), 'INVALID_NAME');
  await rejectsWithCode(assert, () => store.createCapsule('x'.repeat(100000)), 'INVALID_NAME');
});

test('classes made by the library cannot be constructed or called on the wrong object', () => {
  assert.throws(() => new capsa.Store());
  assert.throws(() => new capsa.Crate());
  assert.throws(() => capsa.Store.prototype.capsules.call({}));
});

test('a hostile frame range is refused, not allocated', () => {
  assert.throws(() => capsa.FrameSet.parse('1-9999999999999'), (e) => e.code === 'INVALID_SEQUENCE');
  const huge = capsa.FrameSet.parse('1-10000000');
  assert.equal(huge.count, 10000000);
  assert.equal(huge.contains(5000000), true);
});
