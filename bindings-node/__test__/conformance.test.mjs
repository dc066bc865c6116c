// Runs every shared conformance scenario (tests/conformance/*.json) through the Node binding.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { load, runScenario, suiteFiles } from './conformance.mjs';

const files = suiteFiles();

test('the conformance suites are found', () => {
  for (const f of ['ids.json', 'versions.json', 'store.json', 'seq.json', 'staging.json', 'archive.json']) {
    assert.ok(files.includes(f), `${f} is missing`);
  }
});

for (const file of files) {
  const suite = load(file);
  test(`conformance ${suite.topic} (${file})`, async (t) => {
    for (const scenario of suite.scenarios) {
      await t.test(scenario.name, async () => {
        const failure = await runScenario(suite.topic, scenario);
        assert.equal(failure, null, failure ?? '');
      });
    }
  });
}

// The runner itself must be able to fail: each of these scenarios is wrong on purpose.
test('the conformance runner reports a wrong value, a missing error and a wrong code', async () => {
  const bad = [
    { name: 'wrong value', steps: [{ call: 'id.parse', args: { value: 'abc' }, expect: { kind: 'uuid' } }] },
    { name: 'missing error', steps: [{ call: 'id.parse', args: { value: 'abc' }, error: 'INVALID_NAME' }] },
    { name: 'wrong code', steps: [{ call: 'id.parse', args: { value: '..' }, error: 'NOT_FOUND' }] },
    { name: 'unknown call', steps: [{ call: 'id.no_such_call', args: {} }] },
    { name: 'unknown staging call', steps: [{ call: 'staging.no_such_call', args: {} }] },
    {
      name: 'wrong status',
      steps: [{ call: 'staging.create', args: { name: 'web', tag: '1' }, expect: { status: 'Failure' } }],
    },
    {
      name: 'a value shown',
      steps: [
        { call: 'staging.create', args: { name: 'web', tag: '1', overrides: [{ key: 'K', value: 'shown' }] } },
        { call: 'outputs.search', args: { text: 'shown' }, expect: { found: false } },
      ],
    },
    {
      name: 'an intact archive',
      steps: [
        { call: 'store.create_capsule', args: { id: 'shot' } },
        { call: 'archive.create', args: { id: 'shot', dest: 'a.zip' } },
        { call: 'archive.verify', args: { path: 'a.zip' }, error: 'CORRUPT' },
      ],
    },
  ];
  for (const scenario of bad) {
    const failure = await runScenario('ids', scenario);
    assert.equal(typeof failure, 'string', `${scenario.name}: the runner accepted a wrong scenario`);
    assert.ok(failure.length > 0, scenario.name);
  }
  // And the same runner accepts the right answer, so the failures above are about the values.
  const good = { name: 'right', steps: [{ call: 'id.parse', args: { value: 'abc' }, expect: { kind: 'slug' } }] };
  assert.equal(await runScenario('ids', good), null);
  const goodStaging = {
    name: 'right staging',
    steps: [
      { call: 'staging.create', args: { name: 'web', tag: '1' }, expect: { status: 'Running' } },
      { call: 'outputs.search', args: { text: 'nowhere' }, expect: { found: false } },
    ],
  };
  assert.equal(await runScenario('staging', goodStaging), null);
});
