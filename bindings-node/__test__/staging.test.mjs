// Stagings: the manager over the mock and script backends, events, misuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { capsa, rejectsWithCode, tempDir } from './helpers.mjs';

const { MockBackend, ScriptBackend, StagingManager } = capsa;
const here = path.dirname(fileURLToPath(import.meta.url));

async function open(t, backend = new MockBackend(), options) {
  const manager = await StagingManager.open(path.join(tempDir(t), 'staging.db'), backend, options);
  t.after(() => manager.close());
  return { manager, backend };
}

/** Resolve once `pred(events)` holds, or reject after `ms`. */
function until(events, pred, ms = 10000) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      if (pred(events)) {
        clearInterval(poll);
        resolve();
      } else if (Date.now() - started > ms) {
        clearInterval(poll);
        reject(new Error(`timed out; events: ${JSON.stringify(events)}`));
      }
    }, 5);
  });
}

test('the lifecycle: create, update, delete, restore, cleanup', async (t) => {
  const { manager, backend } = await open(t);
  const web = await manager.create('web', '1.0.0', [{ key: 'REPLICAS', value: '2' }]);
  assert.equal(web.status, 'Running');
  assert.equal(web.tag, '1.0.0');
  assert.deepEqual(web.overrides, [{ key: 'REPLICAS', value: '2', scope: 'app', private: false }]);
  assert.equal((await manager.update('web', '1.1.0')).tag, '1.1.0');
  assert.deepEqual((await manager.get('web')).overrides.map((o) => o.key), ['REPLICAS']);
  assert.equal((await manager.delete('web')).status, 'Archived');
  assert.equal((await manager.restore('web')).status, 'Running');
  await manager.delete('web');
  assert.equal(await manager.cleanup('web'), null);
  await rejectsWithCode(assert, () => manager.get('web'), 'NOT_FOUND');
  assert.deepEqual(await manager.list(), []);
  assert.deepEqual(
    backend.calls().map((c) => c.call).filter((c) => c !== 'tag_check'),
    ['create', 'update', 'delete', 'create', 'delete', 'cleanup'],
  );
  backend.clearCalls();
  assert.deepEqual(backend.calls(), []);
  const audit = await manager.auditLog({ name: 'web' });
  assert.equal(audit.length, 6);
  assert.ok(audit.every((a) => a.outcome === 'Success'));
});

test('transitions, busy and failures carry their codes', async (t) => {
  const { manager, backend } = await open(t);
  await rejectsWithCode(assert, () => manager.update('ghost', '1'), 'INVALID_TRANSITION');
  await manager.create('web', '1');
  await rejectsWithCode(assert, () => manager.create('web', '1'), 'INVALID_TRANSITION');
  await rejectsWithCode(assert, () => manager.restore('web'), 'INVALID_TRANSITION');
  await rejectsWithCode(assert, () => manager.create('../x', '1'), 'INVALID_NAME');

  // Held at the backend: the update is certainly in flight until released.
  backend.hold('update');
  const slow = manager.update('web', '2');
  await until(null, () => backend.held('update') === 1);
  assert.equal((await manager.get('web')).status, 'UpdatePending');
  await rejectsWithCode(assert, () => manager.delete('web'), 'BUSY');
  backend.release('update');
  assert.equal((await slow).status, 'Running');

  backend.push('update', { outcome: 'failed', reason: 'image pull failed' });
  const failed = await manager.update('web', '3');
  assert.equal(failed.status, 'Failure');
  assert.match(failed.reason, /image pull failed/);
});

test('private override values never show', async (t) => {
  const { manager } = await open(t);
  const events = [];
  const unsubscribe = manager.subscribe((e) => events.push(e));
  const s = await manager.create('web', '1', [{ key: 'DB_PASSWORD', value: 'hunter2', scope: 'staging', private: true }]);
  unsubscribe();
  assert.deepEqual(s.overrides, [{ key: 'DB_PASSWORD', value: '***', scope: 'staging', private: true }]);
  const audit = await manager.auditLog();
  assert.ok(!JSON.stringify([s, audit, events]).includes('hunter2'));
});

test('events arrive from the background; none after unsubscribing', async (t) => {
  const { manager, backend } = await open(t);
  const events = [];
  const unsubscribe = manager.subscribe((e) => events.push(e));
  assert.equal(typeof unsubscribe, 'function');
  await manager.create('web', '1');
  await until(events, (ev) => ev.some((e) => e.event === 'CommandFinished'));
  const changes = events.filter((e) => e.event === 'StatusChanged').map((e) => [e.from ?? null, e.to]);
  assert.deepEqual(changes, [[null, 'CreatePending'], ['CreatePending', 'Running']]);
  assert.ok(events.every((e) => e.name === 'web' && typeof e.seq === 'number' && !Number.isNaN(Date.parse(e.at))));
  const finished = events.find((e) => e.event === 'CommandFinished');
  assert.equal(finished.action, 'create');
  assert.equal(finished.outcome, 'Success');

  unsubscribe();
  unsubscribe(); // twice is harmless
  // A second listener marks the point up to which every event was delivered.
  const seen = events.length;
  const marks = [];
  const offMarks = manager.subscribe((e) => marks.push(e));
  await manager.delete('web');
  await until(marks, (ev) => ev.some((e) => e.event === 'CommandFinished'));
  assert.equal(events.length, seen, 'an event arrived after unsubscribing');

  // Unsubscribing while events are on their way (the create held at the backend): none
  // reaches the listener afterwards.
  const late = [];
  const off = manager.subscribe((e) => late.push(e));
  backend.hold('create');
  const running = manager.create('api', '1');
  await until(late, (ev) => ev.length > 0);
  off();
  const before = late.length;
  backend.release('create');
  await running;
  await until(marks, (ev) => ev.filter((e) => e.event === 'CommandFinished').length === 2);
  offMarks();
  assert.equal(late.length, before, 'an event arrived after unsubscribing mid-command');
});

test('the process exits by itself after unsubscribing', () => {
  const dir = tempDir({ after: () => {} });
  const script = path.join(here, 'fixtures', 'subscribe-and-exit.mjs');
  const run = spawnSync(process.execPath, [script, path.join(dir, 'staging.db')], {
    encoding: 'utf8',
    timeout: 30000,
  });
  fs.rmSync(dir, { recursive: true, force: true });
  assert.equal(run.error, undefined, `did not exit by itself: ${run.error}`);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /events: [1-9]/);
  assert.match(run.stdout, /after unsubscribe: 0/);
});

test('a listener that throws does not crash the process; others still get events', async (t) => {
  const { manager } = await open(t);
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const events = [];
  const offBad = manager.subscribe(() => {
    throw new Error('listener bug');
  });
  const offGood = manager.subscribe((e) => events.push(e));
  await manager.create('web', '1');
  await until(events, (ev) => ev.some((e) => e.event === 'CommandFinished'));
  await until(warnings, (w) => w.length > 0);
  assert.equal(warnings[0].name, 'CapsaListenerError');
  assert.match(warnings[0].message, /listener bug/);
  offBad();
  offGood();
});

test('a closed manager refuses with a code', async (t) => {
  const { manager } = await open(t);
  await manager.create('web', '1');
  const pending = manager.subscribe(() => {});
  manager.close();
  manager.close();
  assert.equal(manager.closed, true);
  pending(); // unsubscribing after close is harmless
  const refused = await rejectsWithCode(assert, () => manager.get('web'), 'INVALID_ARGUMENT');
  assert.match(refused.message, /staging manager: it is closed$/); // core's Error::closed
  await rejectsWithCode(assert, () => manager.create('api', '1'), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => manager.subscribe(() => {}), 'INVALID_ARGUMENT');
});

/** DM-style control scripts in `dir` that log each call with its arguments to `log`. */
function writeScripts(dir, log) {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of ['create', 'update', 'delete', 'check', 'cleanup', 'archive_check', 'tag_check']) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, `#!/bin/sh\necho "${name} $*" >> '${log}'\nexit 0\n`);
    fs.chmodSync(file, 0o755);
  }
}

test('open with keyFile: private values sealed by that key, read back after reopening', { skip: process.platform === 'win32' }, async (t) => {
  const dir = tempDir(t);
  const log = path.join(dir, 'calls.log');
  writeScripts(path.join(dir, 'scripts'), log);
  const state = path.join(dir, 'staging.db');
  // Settled on the scripts' exit (the default waits for `check`, polled by reconcile).
  const options = { keyFile: path.join(dir, 'mine.key'), projectName: 'show', settle: 'exit' };
  const backend = `script:${path.join(dir, 'scripts')}`;
  const first = await StagingManager.open(state, backend, options);
  const s = await first.create('web', '1', [{ key: 'DB_PASSWORD', value: 'hunter2', private: true }]);
  assert.deepEqual(s.overrides, [{ key: 'DB_PASSWORD', value: '***', scope: 'app', private: true }]);
  first.close();
  assert.ok(fs.existsSync(options.keyFile), 'the key file named is created');
  assert.ok(!fs.existsSync(path.join(dir, 'staging.key')), 'no key file beside the state');
  for (const f of fs.readdirSync(dir).filter((f) => f.startsWith('staging.db'))) {
    assert.ok(!fs.readFileSync(path.join(dir, f)).includes('hunter2'), `${f} holds the clear value`);
  }

  const again = await StagingManager.open(state, backend, options);
  t.after(() => again.close());
  assert.equal((await again.update('web', '2')).status, 'Running'); // the stored overrides, unsealed
  assert.match(fs.readFileSync(log, 'utf8'), /^update .*--project-name show.*DB_PASSWORD=hunter2/m);
  again.close();

  const otherKey = await StagingManager.open(state, backend, { keyFile: path.join(dir, 'other.key') });
  t.after(() => otherKey.close());
  const refused = await rejectsWithCode(assert, () => otherKey.update('web', '3'), 'INVALID_ARGUMENT');
  assert.ok(!refused.message.includes('hunter2'));
});

test('open with notifications: a hook command gets every status change; a bad file is refused', { skip: process.platform === 'win32' }, async (t) => {
  const dir = tempDir(t);
  const out = path.join(dir, 'changes.log');
  const hook = path.join(dir, 'hook.sh');
  fs.writeFileSync(hook, `#!/bin/sh\necho "$*" >> '${out}'\n`);
  fs.chmodSync(hook, 0o755);
  const file = path.join(dir, 'notifications.toml');
  fs.writeFileSync(file, `[[command]]\npath = "hook.sh"\n`);
  const m = await StagingManager.open(path.join(dir, 'staging.db'), 'mock', { notifications: file });
  t.after(() => m.close());
  await m.create('web', '1');
  const deadline = Date.now() + 20000;
  while (!(fs.existsSync(out) && fs.readFileSync(out, 'utf8').split('\n').length > 2)) {
    assert.ok(Date.now() < deadline, 'the hook ran twice');
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(fs.readFileSync(out, 'utf8').trim().split('\n'), [
    '--name web --old-status none --new-status CreatePending',
    '--name web --old-status CreatePending --new-status Running',
  ]);
  fs.writeFileSync(file, `[[webhook]]\nurl = "ftp://nope"\n`);
  const e = await rejectsWithCode(assert, () => StagingManager.open(path.join(dir, 'other.db'), 'mock', { notifications: file }), 'INVALID_ARGUMENT');
  assert.match(e.message, /url/);
});

test('open takes core\'s backend names and options; unknown or misused ones are refused', async (t) => {
  const dir = tempDir(t);
  const state = path.join(dir, 'staging.db');
  const mock = await StagingManager.open(state, 'mock', { actor: 'ana', checkIntervalMs: 0, retentionMs: 90 * 24 * 3600 * 1000 });
  await mock.create('web', '1');
  assert.equal((await mock.auditLog())[0].actor, 'ana');
  mock.close();
  const refusals = [
    ['mock', { notAnOption: 1 }, /unknown field `not_an_option`/],
    ['mock', { pendingTimeout: 3 }, /unknown field/],
    ['mock', { pendingTimeoutMs: -1 }, /pending_timeout_ms|invalid value/],
    ['mock', { pendingTimeoutMs: 1.5 }, /invalid type/],
    ['mock', { pendingTimeoutMs: Number.NaN }, /not a finite number/],
    ['mock', { actor: null }, /null/],
    ['mock', { actor: 7 }, /invalid type/],
    [new MockBackend(), { projectName: 'show' }, /backend named by its spec/],
    ['helm:charts', undefined, /expected `mock`/],
    ['script:', undefined, /expected `mock`/],
    [`script:${path.join(dir, 'nope')}`, undefined, /does not exist/],
  ];
  for (const [backend, options, message] of refusals) {
    const e = await rejectsWithCode(assert, () => StagingManager.open(state, backend, options), 'INVALID_ARGUMENT');
    assert.match(e.message, message);
  }
});

test('a postgres:// state that cannot be reached is a coded error, not a crash', async (t) => {
  // Port 1 on loopback: nothing listens. The PostgreSQL suites run with `make test-postgres`.
  const url = 'postgres://capsa@127.0.0.1:1/capsa?connect_timeout=2';
  const e = await rejectsWithCode(assert, () => StagingManager.open(url, new MockBackend()), 'STATE');
  assert.match(e.message, /postgres/);
  await rejectsWithCode(assert, () => StagingManager.open('postgres://capsa@127.0.0.1:1/capsa?sslmode=require', 'mock'), 'UNSUPPORTED');
});

test('a postgres:// state (CAPSA_TEST_POSTGRES_URL) with a key file', { skip: !process.env.CAPSA_TEST_POSTGRES_URL && 'no CAPSA_TEST_POSTGRES_URL (tests/postgres/with-postgres.sh sets it)' }, async (t) => {
  const dir = tempDir(t);
  const options = { keyFile: path.join(dir, 'pg.key') };
  const name = `node-${process.pid}-${Date.now()}`;
  const first = await StagingManager.open(process.env.CAPSA_TEST_POSTGRES_URL, 'mock', options);
  await first.create(name, '1', [{ key: 'TOKEN', value: 's3cret', private: true }]);
  first.close();
  const again = await StagingManager.open(process.env.CAPSA_TEST_POSTGRES_URL, 'mock', options);
  t.after(() => again.close());
  assert.equal((await again.get(name)).overrides[0].value, '***');
  assert.equal((await again.update(name, '2')).status, 'Running');
  await again.delete(name);
  assert.equal(await again.cleanup(name), null);
});

test('misuse of the staging API gives coded errors', async (t) => {
  const dir = tempDir(t);
  const backend = new MockBackend();
  await rejectsWithCode(assert, () => backend.setDefault('deploy', { outcome: 'success' }), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => backend.push('create', { outcome: 'maybe' }), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => backend.setDelay('create', -5), 'INVALID_ARGUMENT');
  let caught;
  try {
    await StagingManager.open(path.join(dir, 'a.db'), { not: 'a backend' });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof Error && typeof caught.code === 'string', `got ${caught}`);
  const { manager } = await open(t);
  await rejectsWithCode(assert, () => manager.create('web', '1', [{ key: 'A', value: '1', scope: 'Cluster' }]), 'INVALID_ARGUMENT');
  // Scopes are spelled as in every language: lower case ('App' is Rust's Debug form, refused).
  await rejectsWithCode(assert, () => manager.create('web', '1', [{ key: 'A', value: '1', scope: 'App' }]), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => manager.create('web', '1', [{ key: 'A=B', value: '1' }]), 'INVALID_ARGUMENT');
  let typeError;
  try {
    manager.create('web', 1);
  } catch (e) {
    typeError = e;
  }
  assert.ok(typeError instanceof Error && typeof typeError.code === 'string');
  assert.throws(() => manager.subscribe('not a function'), (e) => typeof e.code === 'string');
});

test('reconcile moves Running to Failure from the backend health answer', async (t) => {
  const { manager, backend } = await open(t, new MockBackend(), { checkIntervalMs: 0 });
  await manager.create('web', '1');
  backend.setDefault('check', { outcome: 'failed', reason: 'pods crashlooping' });
  const report = await manager.reconcile();
  assert.equal(report.checked, 1);
  assert.equal(report.changed, 1);
  assert.equal((await manager.get('web')).status, 'Failure');
  backend.setDefault('check', { outcome: 'success' });
  await manager.reconcile();
  assert.equal((await manager.get('web')).status, 'Running');
});

test('the script backend runs DM-style control scripts', { skip: process.platform === 'win32' }, async (t) => {
  const scripts = tempDir(t);
  const log = path.join(scripts, 'calls.log');
  for (const name of ['create', 'update', 'delete', 'check', 'cleanup', 'archive_check', 'tag_check']) {
    const file = path.join(scripts, name);
    fs.writeFileSync(file, `#!/bin/sh\necho "${name} $*" >> '${log}'\nexit 0\n`);
    fs.chmodSync(file, 0o755);
  }
  const { manager } = await open(t, new ScriptBackend(scripts, { projectName: 'show', timeoutMs: 20000 }));
  // As DM: pending until `check` passes, settled by reconcile.
  assert.equal((await manager.create('web', '1.0.0')).status, 'CreatePending');
  await manager.reconcile();
  assert.equal((await manager.get('web')).status, 'Running');
  const calls = fs.readFileSync(log, 'utf8');
  assert.match(calls, /^create .*--project-name show/m);
  assert.match(calls, /--name web/);
});

test('ScriptBackend options: namespace, dialect and settle as core parses them', { skip: process.platform === 'win32' }, async (t) => {
  const scripts = tempDir(t);
  const log = path.join(scripts, 'calls.log');
  for (const name of ['create', 'update', 'delete', 'check', 'cleanup', 'archive_check', 'tag_check']) {
    const file = path.join(scripts, name);
    fs.writeFileSync(file, `#!/bin/sh\necho "${name} $*" >> '${log}'\nexit 0\n`);
    fs.chmodSync(file, 0o755);
  }
  const backend = new ScriptBackend(scripts, { namespace: 'team-{name}', settle: 'exit', dialect: 'dm' });
  const { manager } = await open(t, backend);
  assert.equal((await manager.create('web', '1.0.0')).status, 'Running');
  assert.match(fs.readFileSync(log, 'utf8'), /^create .*--namespace team-web/m);
  await rejectsWithCode(assert, () => new ScriptBackend(scripts, { dialect: 'helm' }), 'INVALID_ARGUMENT');
  await rejectsWithCode(assert, () => new ScriptBackend(scripts, { settle: 'soon' }), 'INVALID_ARGUMENT');
  assert.ok(new ScriptBackend(scripts, { dialect: 'octopod' }));
});

test('KubernetesBackend: bad input has its codes, a good one opens a manager', async (t) => {
  // Before any cluster is asked (the lifecycle against a real API server is in
  // k8s-test/kubernetes.test.mjs, run by make test-k8s).
  const { KubernetesBackend } = capsa;
  const template = path.join(here, '..', '..', 'examples', 'kubernetes');
  const dir = tempDir(t);
  await rejectsWithCode(assert, () => new KubernetesBackend(path.join(dir, 'nope')), 'INVALID_ARGUMENT');
  const empty = await rejectsWithCode(assert, () => new KubernetesBackend(dir), 'INVALID_ARGUMENT');
  assert.match(empty.message, /no Kubernetes manifest/);
  const missing = await rejectsWithCode(
    assert,
    () => new KubernetesBackend(template, { kubeconfig: path.join(dir, 'missing-kubeconfig') }),
    'BACKEND',
  );
  assert.match(missing.message, /missing-kubeconfig/);
  await rejectsWithCode(assert, () => new KubernetesBackend(template, { readyTimeoutMs: -1 }), 'INVALID_ARGUMENT');

  const kubeconfig = path.join(dir, 'kubeconfig');
  fs.writeFileSync(
    kubeconfig,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
      '',
    ].join('\n'),
  );
  const backend = new KubernetesBackend(template, { kubeconfig, readyTimeoutMs: 5000 });
  assert.equal(backend.templateDir, template);
  const { manager } = await open(t, backend);
  assert.deepEqual(await manager.list(), []);
});

test('a time to live, and single overrides set and unset', async (t) => {
  const { manager } = await open(t);
  const preview = await manager.create('preview', '1.0.0', [{ key: 'LOG', value: 'info' }], {
    ttl: '3d',
  });
  const left = Date.parse(preview.expiresAt) - Date.now();
  assert.ok(left > 3 * 86400e3 - 60e3 && left <= 3 * 86400e3, `${left}`);
  await rejectsWithCode(assert, () => manager.update('preview', '1.0.1', undefined, { ttl: '3 days' }), 'INVALID_ARGUMENT');
  const web = await manager.update('preview', '1.0.1', undefined, {
    ttl: '0s',
    setOverrides: [{ key: 'TOKEN', value: 't0ps3cret', private: true }],
    unsetOverrides: [{ key: 'LOG' }],
  });
  assert.deepEqual(
    web.overrides.map((o) => [o.scope, o.key, o.value]),
    [['app', 'TOKEN', '***']],
  );
  await rejectsWithCode(
    assert,
    () => manager.update('preview', '1.0.2', undefined, { unsetOverrides: [{ key: 'LOG', scope: 'app' }] }),
    'INVALID_ARGUMENT',
  );
  const report = await manager.reconcile();
  assert.deepEqual([report.expired, report.skipped], [1, 0]);
  assert.equal((await manager.get('preview')).status, 'Archived');
  const restored = await manager.restore('preview');
  assert.equal(restored.status, 'Running');
  assert.equal(restored.expiresAt, undefined);
  assert.equal((await manager.update('preview', '1.0.3', undefined, { ttl: '3d' })).status, 'Running');
});
