// Disk work runs off the main thread: timers keep firing while it runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { capsa, tempDir } from './helpers.mjs';

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

test('the event loop keeps serving timers during a long carry-over bump and publish', async (t) => {
  const dir = tempDir(t);
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule('sh010');
  const v1 = await capsule.bump();
  const scenes = v1.section('scenes');
  for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(scenes, `sh010_v001_${i}.ma`), 'scene data');
  const renders = path.join(dir, 'renders');
  fs.mkdirSync(renders);
  const frame = Buffer.alloc(256 * 1024, 7);
  for (let f = 1; f <= 400; f++) fs.writeFileSync(path.join(renders, `plate.${1000 + f}.exr`), frame);

  const started = performance.now();
  const { worst, ticks } = await worstTimerLag(async () => {
    const v2 = await capsule.bump({ carryOver: ['scenes'] });
    await v2.publish(path.join(renders, 'plate.####.exr'));
  });
  const took = performance.now() - started;
  assert.ok(ticks > 0, 'no timer tick at all');
  assert.ok(worst < 50, `timer lag ${worst.toFixed(1)} ms during ${took.toFixed(0)} ms of work`);
});
