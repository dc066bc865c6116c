// examples/node/watch.ts compiles (tsc --strict) and its demo prints capsules and live staging
// events, then exits by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const repo = path.resolve(pkg, '..');

test('the watch example lists capsules and prints staging events live', () => {
  const tsc = path.join(pkg, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(repo, 'examples', 'node'), '--noEmit', 'false'], {
    cwd: pkg,
    encoding: 'utf8',
  });
  const out = execFileSync(process.execPath, [path.join(repo, 'target', 'examples-node', 'watch.js'), '--demo'], {
    encoding: 'utf8',
    timeout: 60000,
  });
  assert.match(out, /sh010 +latest v002 +published v001 +\(2 crates\)/);
  assert.match(out, /event .* sh010-review: new -> CreatePending/);
  assert.match(out, /sh010-review: UpdatePending -> Failure \(image pull failed\)/);
  assert.match(out, /sh010-review: DeletePending -> Archived/);
  assert.ok(!out.includes('s3cret'));
});

test('the archive example writes a verified zip of a capsule and prints its report', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const { capsa } = await import('./helpers.mjs');
  const tsc = path.join(pkg, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(repo, 'examples', 'node'), '--noEmit', 'false'], {
    cwd: pkg,
    encoding: 'utf8',
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-node-archive-'));
  try {
    const root = path.join(dir, 'show');
    const store = await capsa.Store.init(root);
    const capsule = await store.createCapsule('sh010');
    const crate = await capsule.bump();
    fs.writeFileSync(path.join(crate.section('scenes'), 'sh010_v001.ma'), 'scene\n');
    const dest = path.join(dir, 'sh010.zip');
    const out = execFileSync(
      process.execPath,
      [path.join(repo, 'target', 'examples-node', 'archive.js'), root, 'sh010', dest],
      { encoding: 'utf8', timeout: 60000 },
    );
    assert.match(out, /sh010\.zip: \d+ files, \d+ bytes -> \d+ bytes \(verified: true\)/);
    assert.ok(fs.statSync(dest).size > 0);
    // The example's error path: a missing capsule is reported with its code, exit 1.
    let failed;
    try {
      execFileSync(process.execPath, [path.join(repo, 'target', 'examples-node', 'archive.js'), root, 'nope', dest], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      failed = e;
    }
    assert.ok(failed, 'archiving a missing capsule must fail');
    assert.equal(failed.status, 1);
    assert.match(failed.stderr, /archive: error \[NOT_FOUND\]/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
