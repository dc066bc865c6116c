// Disk work runs off the main thread: timers keep firing while it runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { worstTimerLag, capsa, tempDir } from './helpers.mjs';

test('the event loop keeps serving timers during a long carry-over bump and publish', async (t) => {
  const dir = tempDir(t);
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule('sh010');
  const v1 = await capsule.bump();
  const scenes = v1.section('scenes');
  for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(scenes, `sh010_v001_${i}.ma`), 'scene data');
  const renders = path.join(dir, 'renders');
  fs.mkdirSync(renders);
  const frame = Buffer.alloc(256 * 1024, 7);
  for (let f = 1; f <= 200; f++) fs.writeFileSync(path.join(renders, `plate.${1000 + f}.exr`), frame);

  // A call that blocked the main thread would let no 5 ms tick fire before it settles; the
  // lag itself is a figure for `make bench-node`, not an assertion.
  let v;
  const bump = await worstTimerLag(async () => {
    v = await capsule.bump({ carryOver: ['scenes'] });
  });
  assert.ok(bump.ticks >= 1, `only ${bump.ticks} timer ticks fired during a 1000-file carry-over`);
  const publish = await worstTimerLag(() => v.publish(path.join(renders, 'plate.####.exr')));
  assert.ok(publish.ticks >= 1, `only ${publish.ticks} timer ticks fired while 200 frames were published`);
});
