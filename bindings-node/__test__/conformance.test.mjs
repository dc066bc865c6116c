// Runs every shared conformance scenario (tests/conformance/*.json) through the Node binding.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { load, runScenario, suiteFiles } from './conformance.mjs';

const files = suiteFiles();

test('the conformance suites are found', () => {
  for (const f of ['ids.json', 'versions.json', 'store.json', 'seq.json']) {
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
