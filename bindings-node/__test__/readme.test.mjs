// The README's Node example runs as written (from the repository root, twice: init then open).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { tempDir } from './helpers.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

test('the README Node example runs', (t) => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Node\n'));
  const match = section.match(/```js\n([\s\S]*?)```/);
  assert.ok(match, 'no js block in the README Node section');
  const script = path.join(repo, `.readme-example-${process.pid}.mjs`);
  fs.writeFileSync(script, match[1]);
  t.after(() => fs.rmSync(script, { force: true }));
  const show = path.join(tempDir(t), 'show');
  const first = execFileSync(process.execPath, [script, show], { cwd: repo, encoding: 'utf8' });
  assert.match(first, /^v001 v001\n/);
  assert.match(first, /plate\.%04d\.exr 1001-1100/);
  const second = execFileSync(process.execPath, [script, show], { cwd: repo, encoding: 'utf8' });
  assert.match(second, /^v002 v002\n/);
});
