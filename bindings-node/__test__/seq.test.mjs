// Frame sequences: synchronous parsing and detection, findSequences through a Promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { capsa, rejectsWithCode, tempDir } from './helpers.mjs';

test('Sequence.parse and formatting in every style', () => {
  const s = capsa.Sequence.parse('plate.1001-1100#.exr');
  assert.equal(s.head, 'plate.');
  assert.equal(s.tail, '.exr');
  assert.equal(s.padding, 4);
  assert.equal(s.count, 100);
  assert.equal(s.frames.min, 1001);
  assert.equal(s.frames.max, 1100);
  assert.equal(s.format('printf'), 'plate.%04d.exr 1001-1100');
  assert.equal(s.format(), 'plate.1001-1100#.exr');
  assert.equal(s.pattern('houdini'), 'plate.$F4.exr');
  assert.equal(s.path(7), 'plate.0007.exr');
  assert.equal(String(s), 'plate.1001-1100#.exr');
  assert.throws(() => s.format('nope'), (e) => e.code === 'INVALID_ARGUMENT');
  assert.throws(() => capsa.Sequence.parse('plate.1-1000000000000#.exr'), (e) => e.code === 'INVALID_SEQUENCE');
});

test('FrameSet parse, contains, missing, toArray', () => {
  const fs_ = capsa.FrameSet.parse('1-9x2,20');
  assert.deepEqual(fs_.toArray(), [1, 3, 5, 7, 9, 20]);
  assert.equal(fs_.contains(5), true);
  assert.equal(fs_.contains(6), false);
  assert.equal(fs_.count, 6);
  assert.throws(() => capsa.FrameSet.parse('5-1x0'), (e) => e.code === 'INVALID_SEQUENCE');
});

test('sequencesIn leaves versions alone and reports gaps', () => {
  const names = ['sh010_v001.0001.exr', 'sh010_v001.0002.exr', 'sh010_v001.0005.exr', 'notes.txt', 'shot_v001.exr'];
  const found = capsa.sequencesIn(names);
  assert.deepEqual(found.map(String), ['sh010_v001.1-2,5#.exr']);
  assert.equal(found[0].missing().toString(), '3-4');
});

test('findSequences reads a directory', async (t) => {
  const dir = tempDir(t);
  for (let f = 1; f <= 3; f++) fs.writeFileSync(path.join(dir, `a.${String(f).padStart(4, '0')}.exr`), '');
  const found = await capsa.findSequences(dir);
  assert.deepEqual(found.map(String), ['a.1-3#.exr']);
});

test('Version and CapsuleId', () => {
  const v = capsa.Version.parse('v0999');
  assert.equal(v.number, 999);
  assert.equal(v.next().padded(), 'v1000');
  assert.equal(v.compare(capsa.Version.fromNumber(1000)), -1);
  assert.equal(capsa.CapsuleId.parse('656796239c1b981568180614').kind, 'objectid');
  assert.throws(() => capsa.CapsuleId.parse('..'), (e) => e.code === 'INVALID_NAME');
  assert.throws(() => capsa.Version.fromNumber(0), (e) => e.code === 'INVALID_VERSION');
  return rejectsWithCode(assert, () => capsa.Version.parse('x'), 'INVALID_VERSION');
});
