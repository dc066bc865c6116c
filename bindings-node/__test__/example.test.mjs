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
