// KubernetesBackend against the real API server of tests/k8s.
//
// Not part of `npm test` / `make test-node` (no server there): `make test-k8s` runs
// `npm run test:k8s` under tests/k8s/with-control-plane.sh. Without the control plane's
// environment (KUBECONFIG, CAPSA_K8S_SERVER, CAPSA_K8S_TOKEN, CAPSA_K8S_CA) every test fails,
// saying so.
//
// No controllers run: the test plays them over the REST API (fetch), patching /status,
// creating the StatefulSet's claim, removing pvc-protection finalizers and finalizing the
// namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
const { KubernetesBackend, StagingManager } = require('../index.js');

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const template = path.join(repo, 'examples', 'kubernetes');

function env() {
  const names = ['KUBECONFIG', 'CAPSA_K8S_SERVER', 'CAPSA_K8S_TOKEN', 'CAPSA_K8S_CA'];
  const missing = names.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(
      `${missing.join(', ')} not set: run through tests/k8s/with-control-plane.sh (make test-k8s)`,
    );
  }
  if (!process.env.CAPSA_K8S_SERVER.startsWith('https://127.0.0.1:')) {
    throw new Error(`${process.env.CAPSA_K8S_SERVER} is not the loopback test API server`);
  }
  return {
    kubeconfig: process.env.KUBECONFIG,
    server: process.env.CAPSA_K8S_SERVER,
    token: process.env.CAPSA_K8S_TOKEN,
    ca: fs.readFileSync(process.env.CAPSA_K8S_CA),
  };
}

/** The controllers' side: one REST call; the answer's JSON, or null for 404. */
function call(k, method, urlPath, body, contentType = 'application/json') {
  // node:https rather than fetch: fetch (undici) takes no per-request CA in Node 18/20.
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      k.server + urlPath,
      {
        method,
        ca: k.ca,
        headers: {
          Authorization: `Bearer ${k.token}`,
          Accept: 'application/json',
          ...(data === undefined ? {} : { 'Content-Type': contentType }),
        },
        timeout: 30000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          if (res.statusCode === 404) resolve(null);
          else if (res.statusCode >= 300) reject(new Error(`${method} ${urlPath}: ${res.statusCode} ${text}`));
          else resolve(JSON.parse(text));
        });
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: timed out`)));
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const get = (k, p) => call(k, 'GET', p);
const mergePatch = (k, p, body) => call(k, 'PATCH', p, body, 'application/merge-patch+json');
const names = async (k, p) => (await get(k, p)).items.map((i) => i.metadata.name);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, f, ms = 60000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The deployment and StatefulSet controllers: `web` and `db` rolled out, `db`'s claim made. */
async function playReady(k, ns) {
  const apps = `/apis/apps/v1/namespaces/${ns}`;
  const d = await waitFor('Deployment web', () => get(k, `${apps}/deployments/web`));
  const r = d.spec.replicas ?? 1;
  await mergePatch(k, `${apps}/deployments/web/status`, {
    status: {
      observedGeneration: d.metadata.generation,
      replicas: r,
      updatedReplicas: r,
      readyReplicas: r,
      availableReplicas: r,
    },
  });
  const s = await waitFor('StatefulSet db', () => get(k, `${apps}/statefulsets/db`));
  const pvcs = `/api/v1/namespaces/${ns}/persistentvolumeclaims`;
  if ((await get(k, `${pvcs}/data-db-0`)) === null) {
    const spec = s.spec.volumeClaimTemplates[0].spec;
    await call(k, 'POST', pvcs, { metadata: { name: 'data-db-0' }, spec });
  }
  const rev = `db-${s.metadata.generation}`;
  await mergePatch(k, `${apps}/statefulsets/db/status`, {
    status: {
      observedGeneration: s.metadata.generation,
      replicas: 1,
      readyReplicas: 1,
      currentReplicas: 1,
      updatedReplicas: 1,
      availableReplicas: 1,
      currentRevision: rev,
      updateRevision: rev,
    },
  });
}

/** The PVC-protection and namespace controllers, until the namespace is gone. */
async function playNamespaceDeletion(k, ns) {
  await waitFor(`namespace ${ns} gone`, async () => {
    const pvcs = await get(k, `/api/v1/namespaces/${ns}/persistentvolumeclaims`);
    for (const p of pvcs ? pvcs.items : []) {
      if (p.metadata.deletionTimestamp && p.metadata.finalizers) {
        await mergePatch(k, `/api/v1/namespaces/${ns}/persistentvolumeclaims/${p.metadata.name}`, {
          metadata: { finalizers: null },
        });
      }
    }
    const n = await get(k, `/api/v1/namespaces/${ns}`);
    if (n === null) return true;
    if (n.metadata.deletionTimestamp) {
      n.spec.finalizers = [];
      await call(k, 'PUT', `/api/v1/namespaces/${ns}/finalize`, n);
    }
    return null;
  });
}

test('KubernetesBackend: create, pending until ready, check, archive, cleanup', async (t) => {
  const k = env();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-node-k8s-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const name = `node-${process.pid}`;
  const backend = new KubernetesBackend(template, { kubeconfig: k.kubeconfig, readyTimeoutMs: 120000 });
  assert.equal(backend.templateDir, template);
  const m = await StagingManager.open(path.join(dir, 'state.db'), backend, { checkIntervalMs: 0 });
  t.after(() => m.close());
  const apps = `/apis/apps/v1/namespaces/${name}`;

  // create: applied at once, then pending until the workloads are ready.
  const created = m.create(name, '1.0.0', [
    { key: 'LOG_LEVEL', value: 'debug' },
    { key: 'REPLICAS', value: '2', scope: 'staging' },
  ]);
  created.catch(() => {}); // awaited below; no unhandled rejection meanwhile
  const web = await waitFor('Deployment web', () => get(k, `${apps}/deployments/web`));
  assert.equal(web.spec.replicas, 2);
  assert.match(web.spec.template.spec.containers[0].image, /\/web:1\.0\.0$/);
  const cm = await get(k, `/api/v1/namespaces/${name}/configmaps/capsa-app-env`);
  assert.deepEqual(cm.data, { LOG_LEVEL: 'debug' });
  for (const until = Date.now() + 1500; Date.now() < until; await sleep(100)) {
    assert.equal((await m.get(name)).status, 'CreatePending');
  }
  await playReady(k, name);
  const s = await created;
  assert.equal(s.status, 'Running', s.reason);

  // check: the backend is asked, and answers ready.
  const report = await m.reconcile();
  assert.equal(report.checked, 1);
  assert.equal(report.transientErrors, 0);
  const checked = await m.get(name);
  assert.equal(checked.status, 'Running');
  assert.ok(checked.checkedAt, 'checkedAt set by the check');

  // delete (archive): workloads gone, the volume claim kept.
  const archived = await m.delete(name);
  assert.equal(archived.status, 'Archived', archived.reason);
  assert.deepEqual(await names(k, `${apps}/deployments`), []);
  assert.deepEqual(await names(k, `${apps}/statefulsets`), []);
  assert.deepEqual(await names(k, `/api/v1/namespaces/${name}/persistentvolumeclaims`), ['data-db-0']);

  // cleanup: volumes and namespace gone (the test finalizes them), then the record.
  const cleaned = m.cleanup(name);
  cleaned.catch(() => {}); // awaited below
  await playNamespaceDeletion(k, name);
  assert.equal(await cleaned, null);
  assert.equal(await get(k, `/api/v1/namespaces/${name}`), null);
  await assert.rejects(m.get(name), (e) => e.code === 'NOT_FOUND');
  const audit = await m.auditLog({ name });
  assert.deepEqual(
    audit.map((a) => [a.action, a.outcome]),
    [
      ['create', 'Success'],
      ['delete', 'Success'],
      ['cleanup', 'Success'],
    ],
  );
});

test('the README KubernetesBackend example runs, while the test plays the cluster', async (t) => {
  const k = env();
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Node\n'), readme.indexOf('\n## C and C++'));
  const block = [...section.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .find((b) => b.includes('KubernetesBackend'));
  assert.ok(block, 'no KubernetesBackend example in the README Node section');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-node-k8s-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const name = `nodereadme-${process.pid}`;
  const code = block
    .split('\n')
    .map((l) => l.replace(/^ {2}/, ''))
    .join('\n')
    .replaceAll("'review-42'", `'${name}'`)
    .replace("'/tmp/stagings.db'", JSON.stringify(path.join(dir, 'stagings.db')));
  assert.ok(code.includes(name));
  const script = path.join(repo, `.readme-k8s-${process.pid}.mjs`);
  fs.writeFileSync(script, code);
  t.after(() => fs.rmSync(script, { force: true }));
  const run = promisify(execFile)(process.execPath, [script], { cwd: repo, encoding: 'utf8' });
  run.catch(() => {}); // awaited below
  await playReady(k, name);
  await playNamespaceDeletion(k, name);
  const { stdout } = await run;
  assert.equal(stdout, `${name} Running\nArchived\nnull\n`);
});
