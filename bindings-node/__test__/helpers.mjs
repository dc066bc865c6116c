// Shared helpers of the Node tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The binding, loaded the way a user's `require('capsa')` loads it. */
export const capsa = require('../index.js');

/** A fresh temporary directory, removed when the test ends. */
export function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-node-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh store in a temporary directory. */
export async function tempStore(t, options) {
  return capsa.Store.init(path.join(tempDir(t), 'store'), options);
}

/** Assert that `fn()` (sync or async) fails with an `Error` whose `code` is `code`. */
export async function rejectsWithCode(assert, fn, code) {
  let caught;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error, `expected an Error with code ${code}, got ${caught}`);
  assert.equal(caught.code, code, `wrong code (${caught.message})`);
  return caught;
}
