// Long staging commands wait on capsa's own runtime, not on libuv's thread pool: while many of
// them are in flight, the host's file work (which needs that pool: 4 threads by default) goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { capsa, tempDir } from './helpers.mjs';

const { MockBackend, StagingManager } = capsa;

/** Resolve once `pred()` holds, or reject after `ms` with `what`. */
function until(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (pred()) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error(`timed out after ${ms} ms: ${what}`));
      }
    }, 5);
  });
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

test('eight held creates leave libuv free: file reads finish while they wait', async (t) => {
  const dir = tempDir(t);
  const backend = new MockBackend();
  const manager = await StagingManager.open(path.join(dir, 'staging.db'), backend);
  t.after(() => manager.close());
  const small = path.join(dir, 'small.txt');
  fs.writeFileSync(small, 'a small file\n');

  backend.hold('create');
  // However the test ends, let the creates go so that nothing keeps the process alive.
  t.after(() => backend.release('create'));
  const names = Array.from({ length: 8 }, (_, i) => `web${i}`);
  const creates = names.map((n) => manager.create(n, '1.0.0'));

  // Four held would fill libuv's default pool, had the creates waited there.
  await until(() => backend.held('create') >= 4, 10000,
    `creates held at the backend (${backend.held('create')} are)`);

  // A liveness bound, not a benchmark: on libuv's pool these reads would wait for the creates.
  const started = performance.now();
  const texts = await within(
    Promise.all(Array.from({ length: 20 }, () => fs.promises.readFile(small, 'utf8'))),
    5000,
    '20 reads of a small file while eight creates are held',
  );
  const took = performance.now() - started;
  t.diagnostic(`20 reads took ${took.toFixed(1)} ms with eight creates held`);
  assert.ok(texts.every((s) => s === 'a small file\n'));
  // All eight reach the backend at once (none waits for a free thread) and are still held.
  await until(() => backend.held('create') === 8, 10000,
    `eight creates held at the backend (${backend.held('create')} are)`);
  assert.equal((await manager.get('web0')).status, 'CreatePending');

  backend.release('create');
  const made = await Promise.all(creates);
  assert.deepEqual(made.map((s) => s.status), names.map(() => 'Running'));
});
