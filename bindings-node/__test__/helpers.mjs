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

/** Run `work()` while a 5 ms interval measures how late its ticks come; the worst lag in ms. */
export async function worstTimerLag(work) {
  let worst = 0;
  let last = performance.now();
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 5);
    last = now;
    ticks += 1;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return { worst, ticks };
}
