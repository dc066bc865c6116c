// Every exported function and method, called with values of the wrong type, fails with an
// Error carrying a string `code` (or succeeds where the value happens to be acceptable) and
// never crashes the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { capsa, tempDir } from './helpers.mjs';

// Garbage such as Store.init('x', {}) is valid enough to make a store: make it in a scratch
// working directory, never in the source tree (each test file runs in its own process).
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-garbage-'));
process.chdir(scratch);
process.on('exit', () => fs.rmSync(scratch, { recursive: true, force: true }));

const garbage = [undefined, null, 42, -1, 1.5, NaN, '', 'x', {}, [], [1, 'a'], () => {}, Symbol('s'), 10n, true];

async function outcome(fn) {
  try {
    const value = fn();
    if (value instanceof Promise) await value;
    return null;
  } catch (e) {
    if (!(e instanceof Error)) return `threw a non-Error: ${String(e)}`;
    if (typeof e.code !== 'string' || e.code === '') return `Error without a code: ${e.message}`;
    return null;
  }
}

async function instances(t) {
  const dir = tempDir(t);
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule('sh010');
  const krate = await capsule.bump();
  const manager = await capsa.StagingManager.open(path.join(dir, 'staging.db'), new capsa.MockBackend());
  t.after(() => manager.close());
  return {
    Store: store,
    Capsule: capsule,
    Crate: krate,
    Sequence: capsa.Sequence.parse('a.1-3#.exr'),
    FrameSet: capsa.FrameSet.parse('1-3'),
    Version: capsa.Version.parse('v1'),
    CapsuleId: capsa.CapsuleId.parse('sh010'),
    MockBackend: new capsa.MockBackend(),
    ScriptBackend: new capsa.ScriptBackend(dir),
    StagingManager: manager,
  };
}

test('wrong-typed arguments everywhere give coded errors, never a crash', async (t) => {
  const objects = await instances(t);
  const problems = [];
  const skip = new Set(['constructor', 'close']);
  for (const [name, value] of Object.entries(capsa)) {
    if (typeof value !== 'function') continue;
    const isClass = objects[name] !== undefined;
    const targets = isClass
      ? [
          ...Object.getOwnPropertyNames(value)
            .filter((k) => typeof value[k] === 'function')
            .map((k) => [`${name}.${k}`, value, value[k]]),
          ...Object.getOwnPropertyNames(value.prototype)
            .filter((k) => !skip.has(k) && typeof Object.getOwnPropertyDescriptor(value.prototype, k).value === 'function')
            .map((k) => [`${name}#${k}`, objects[name], value.prototype[k]]),
        ]
      : [[name, undefined, value]];
    for (const [label, self, fn] of targets) {
      for (const a of garbage) {
        for (const args of [[a], [a, a], ['x', a], [a, 'x'], ['x', 'x', a], ['x', 'x', [a]]]) {
          const problem = await outcome(() => fn.apply(self, args));
          if (problem) problems.push(`${label}(${args.map((v) => typeof v).join(', ')}): ${problem}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
});
