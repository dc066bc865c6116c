// The Node runner of the shared conformance scenarios (tests/conformance/*.json).
//
// Same format and semantics as the Rust runner (tests/src/conformance.rs): each scenario runs
// in a fresh temporary directory whose store (padding 3 unless a `store.init` step says
// otherwise) is created on first use; a step's `expect` keys must all be equal in the result
// (keys not given are not compared), `error` must be the stable code of the error thrown, and
// a step with neither must simply succeed. Results are built with the same JSON shapes as the
// Rust runner, from the binding's public API only.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const capsa = require('../index.js');

const here = path.dirname(fileURLToPath(import.meta.url));
export const conformanceDir = path.resolve(here, '..', '..', 'tests', 'conformance');

/** Every suite file name, sorted. */
export function suiteFiles() {
  return fs
    .readdirSync(conformanceDir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** Load one suite by file name (`ids.json`). */
export function load(file) {
  return JSON.parse(fs.readFileSync(path.join(conformanceDir, file), 'utf8'));
}

/** An error for malformed step arguments, coded like the Rust runner's. */
function badArgs(reason) {
  const e = new Error(`invalid conformance arguments: ${reason}`);
  e.code = 'INVALID_ARGUMENT';
  return e;
}

function str(args, key) {
  const v = args[key];
  if (typeof v !== 'string') throw badArgs(`${JSON.stringify(key)} must be a string`);
  return v;
}

const optStr = (args, key) => (typeof args[key] === 'string' ? args[key] : undefined);
const padding = (args) => (Number.isInteger(args.padding) ? args.padding : 3);
const slash = (p) => p.split(path.sep).join('/');

/** How long `mock.wait_held` waits for a held call (ms). */
const HELD_WAIT_MS = 10_000;
const COMMANDS = ['create', 'update', 'delete', 'restore', 'cleanup'];

class Ctx {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-conformance-'));
    this.store = null;
    this.manager = null;
    this.mock = null;
    // Commands started by `staging.start`, by staging name: { command, promise }.
    this.started = new Map();
    // Every result (JSON text) and error ("CODE: message") so far, for `outputs.search`.
    this.outputs = [];
  }

  async openManager(args) {
    this.manager?.close();
    this.mock = new capsa.MockBackend();
    if (typeof args.min_tag === 'string') this.mock.setMinTag(args.min_tag);
    const options = { actor: 'conformance' };
    if (Number.isInteger(args.check_interval_ms)) options.checkIntervalMs = args.check_interval_ms;
    if (Number.isInteger(args.retention_ms)) options.retentionMs = args.retention_ms;
    this.manager = await capsa.StagingManager.open(path.join(this.dir, 'staging.db'), this.mock, options);
  }

  async getManager() {
    if (!this.manager) await this.openManager({});
    return this.manager;
  }

  async getStore() {
    if (!this.store) this.store = await capsa.Store.init(path.join(this.dir, 'store'));
    return this.store;
  }

  async getCrate(args) {
    const version = capsa.Version.parse(str(args, 'version'));
    const capsule = await (await this.getStore()).capsule(str(args, 'id'));
    return capsule.get(version.number);
  }

  async close() {
    // A command still in flight is let go and waited for before the directory goes.
    for (const { promise } of this.started.values()) {
      for (const c of ['create', 'update', 'delete', 'cleanup']) this.mock?.release(c);
      await promise.catch(() => {});
    }
    this.manager?.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function walk(root, dir, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(root, p, out);
    else out.push(slash(path.relative(root, p)));
  }
}


// ---- files ----------------------------------------------------------------------------------

function fileCall(ctx, name, args) {
  const p = path.join(ctx.dir, str(args, 'path'));
  switch (name) {
    case 'file.truncate': {
      if (!Number.isInteger(args.size)) throw badArgs('"size" must be an integer');
      const len = fs.statSync(p).size;
      const keep = Math.max(0, Math.min(len, args.size < 0 ? len + args.size : args.size));
      fs.truncateSync(p, keep);
      return {};
    }
    case 'file.flip_byte': {
      const data = fs.readFileSync(p);
      const offset = Number.isInteger(args.offset) ? args.offset : 0;
      let at;
      if (typeof args.find === 'string') {
        const start = data.indexOf(Buffer.from(args.find, 'utf8'));
        if (start < 0) throw badArgs(`${JSON.stringify(args.find)} not in ${p}`);
        at = start + offset;
      } else {
        at = offset < 0 ? data.length + offset : offset;
      }
      if (at < 0 || at >= data.length) throw badArgs(`offset ${at} outside ${p}`);
      data[at] ^= 0xff;
      fs.writeFileSync(p, data);
      return {};
    }
    case 'file.copy':
      fs.copyFileSync(p, path.join(ctx.dir, str(args, 'dest')));
      return {};
    case 'file.remove':
      fs.rmSync(p, { recursive: true });
      return {};
    case 'file.read':
      return { text: fs.readFileSync(p, 'utf8') };
    case 'file.exists':
      return { exists: fs.existsSync(p) };
    default:
      return undefined;
  }
}

// ---- archives -------------------------------------------------------------------------------

const stubView = (s) => ({ capsule: s.capsule, files: s.files });

async function archiveCall(ctx, name, args) {
  const store = () => ctx.getStore();
  switch (name) {
    case 'archive.create': {
      const capsule = await (await store()).capsule(str(args, 'id'));
      const options = { replace: args.replace === true };
      if (typeof args.policy === 'string') options.policy = args.policy;
      const r = await capsa.archive(capsule, path.join(ctx.dir, str(args, 'dest')), options);
      return {
        capsule: r.capsule,
        files: r.files,
        dirs: r.dirs,
        symlinks: r.symlinks,
        deflated: r.deflated,
        stored: r.stored,
        zip64: r.zip64,
        verified: r.verified,
        skipped: r.skipped,
      };
    }
    case 'archive.verify': {
      const v = await capsa.verify(path.join(ctx.dir, str(args, 'path')));
      return { capsule: v.capsule, entries: v.entries, files: v.files, dirs: v.dirs, symlinks: v.symlinks };
    }
    case 'archive.restore': {
      const c = await (await store()).restore(path.join(ctx.dir, str(args, 'path')), {
        replace: args.replace === true,
      });
      return { id: c.id };
    }
    case 'capsule.take_offline': {
      const capsule = await (await store()).capsule(str(args, 'id'));
      return stubView(await capsule.takeOffline(path.join(ctx.dir, str(args, 'archive'))));
    }
    case 'capsule.offline': {
      const capsule = await (await store()).capsule(str(args, 'id'));
      const stub = await capsule.offlineStub();
      return { offline: await capsule.isOffline(), stub: stub ? stubView(stub) : null };
    }
    case 'store.retrieve':
      return { id: (await (await store()).retrieve(str(args, 'id'))).id };
    default:
      return undefined;
  }
}

// ---- stagings -------------------------------------------------------------------------------

function overrides(args) {
  if (args.overrides === undefined) return undefined;
  if (!Array.isArray(args.overrides)) throw badArgs('"overrides" must be an array');
  return args.overrides.map((o) => {
    const visibility = o.visibility ?? 'public';
    if (visibility !== 'public' && visibility !== 'private') {
      throw badArgs(`${JSON.stringify(visibility)} is not public or private`);
    }
    return { key: o.key, value: o.value, scope: o.scope ?? 'app', private: visibility === 'private' };
  });
}

const orNull = (v) => (v === undefined ? null : v);

function stagingView(s) {
  return {
    name: s.name,
    tag: s.tag,
    status: s.status,
    reason: orNull(s.reason),
    command_in_progress: orNull(s.commandInProgress),
    overrides: s.overrides.map((o) => ({
      key: o.key,
      value: o.value,
      scope: o.scope,
      visibility: o.private ? 'private' : 'public',
    })),
  };
}

function eventView(e) {
  if (e.event === 'StatusChanged') {
    return { kind: 'status_changed', name: e.name, from: orNull(e.from), to: orNull(e.to), reason: orNull(e.reason) };
  }
  return {
    kind: 'command_finished',
    name: e.name,
    action: e.action,
    outcome: e.outcome,
    reason: orNull(e.reason),
  };
}

function auditView(a) {
  return {
    name: a.name,
    action: a.action,
    actor: a.actor,
    tag: orNull(a.tag),
    overrides: a.overrides,
    outcome: a.outcome,
    status_before: orNull(a.statusBefore),
    status_after: orNull(a.statusAfter),
    reason: orNull(a.reason),
  };
}

/** Start `command` (a Promise of its conformance result). */
function runCommand(m, command, args) {
  const name = str(args, 'name');
  const tag = optStr(args, 'tag') ?? '';
  switch (command) {
    case 'create':
      return m.create(name, tag, overrides(args) ?? []).then(stagingView);
    case 'update':
      return m.update(name, tag, overrides(args)).then(stagingView);
    case 'delete':
      return m.delete(name).then(stagingView);
    case 'restore':
      return m.restore(name).then(stagingView);
    case 'cleanup':
      return m.cleanup(name).then((s) => ({ staging: s ? stagingView(s) : null }));
    default:
      throw badArgs(`${JSON.stringify(command)} is not a command`);
  }
}

async function stagingCall(ctx, name, args) {
  if (name === 'staging.open') {
    await ctx.openManager(args);
    return {};
  }
  const m = await ctx.getManager();
  const mock = ctx.mock;
  const reply = () => {
    const r = { outcome: str(args, 'outcome') };
    if (typeof args.reason === 'string') r.reason = args.reason;
    return r;
  };
  switch (name) {
    case 'mock.push':
      mock.push(str(args, 'call'), reply());
      return {};
    case 'mock.set_default':
      mock.setDefault(str(args, 'call'), reply());
      return {};
    case 'mock.hold':
      mock.hold(str(args, 'call'));
      return {};
    case 'mock.release':
      mock.release(str(args, 'call'));
      return {};
    case 'mock.held':
      return { held: mock.held(str(args, 'call')) };
    case 'mock.wait_held': {
      const call = str(args, 'call');
      const want = Number.isInteger(args.count) ? args.count : 1;
      const deadline = Date.now() + HELD_WAIT_MS;
      while (mock.held(call) < want && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return { held: mock.held(call) };
    }
    case 'mock.calls':
      return { calls: mock.calls().map((c) => ({ call: c.call, name: c.name })) };
    case 'mock.count':
      return { count: mock.count(str(args, 'call')) };
    case 'staging.start': {
      const command = str(args, 'command');
      let promise;
      try {
        promise = runCommand(m, command, args);
      } catch (e) {
        promise = Promise.reject(e);
      }
      promise.catch(() => {}); // its error is reported by staging.wait
      ctx.started.set(str(args, 'name'), { command, promise });
      return {};
    }
    case 'staging.wait': {
      const n = str(args, 'name');
      const started = ctx.started.get(n);
      if (!started) throw badArgs(`no command of ${n} was started`);
      ctx.started.delete(n);
      return await started.promise;
    }
    case 'staging.get':
      return stagingView(await m.get(str(args, 'name')));
    case 'staging.list': {
      const all = await m.list();
      return {
        names: all.map((s) => s.name),
        stagings: Object.fromEntries(all.map((s) => [s.name, stagingView(s)])),
      };
    }
    case 'staging.log': {
      const query = {};
      if (typeof args.name === 'string') query.name = args.name;
      if (Number.isInteger(args.limit)) query.limit = args.limit;
      return { entries: (await m.auditLog(query)).map(auditView) };
    }
    case 'staging.events': {
      const filter = optStr(args, 'name');
      let events = (await m.eventsSince(0)).filter((e) => filter === undefined || e.name === filter).map(eventView);
      if (Number.isInteger(args.last)) events = events.slice(Math.max(0, events.length - args.last));
      return { events };
    }
    case 'staging.reconcile': {
      const r = await m.reconcile();
      return {
        checked: r.checked,
        changed: r.changed,
        transient_errors: r.transientErrors,
        resolved_pending: r.resolvedPending,
        failed_pending: r.failedPending,
        archive_problems: r.archiveProblems,
      };
    }
    case 'staging.clean_archived':
      return {
        removed: await m.cleanArchived(Number.isInteger(args.older_than_ms) ? args.older_than_ms : undefined),
      };
    default: {
      const command = name.slice('staging.'.length);
      if (name.startsWith('staging.') && COMMANDS.includes(command)) return await runCommand(m, command, args);
      return undefined;
    }
  }
}

/** Run one call; `undefined` when the call is unknown. */
async function call(ctx, name, args) {
  if (name.startsWith('file.') && name !== 'file.write') return fileCall(ctx, name, args);
  if (name === 'outputs.search') {
    const text = str(args, 'text');
    return { found: ctx.outputs.some((o) => o.includes(text)) };
  }
  if (name.startsWith('staging.') || name.startsWith('mock.')) return stagingCall(ctx, name, args);
  const archived = await archiveCall(ctx, name, args);
  if (archived !== undefined) return archived;
  return baseCall(ctx, name, args);
}

/** The storage, id, version and sequence calls; `undefined` when the call is unknown. */
async function baseCall(ctx, name, args) {
  switch (name) {
    case 'id.parse': {
      const id = capsa.CapsuleId.parse(str(args, 'value'));
      return { id: id.value, kind: id.kind };
    }
    case 'version.parse': {
      const v = capsa.Version.parse(str(args, 'value'));
      return { number: v.number, text: v.padded(padding(args)) };
    }
    case 'version.next':
      return { text: capsa.Version.parse(str(args, 'value')).next().padded(padding(args)) };
    case 'version.compare': {
      const a = capsa.Version.parse(str(args, 'a'));
      const b = capsa.Version.parse(str(args, 'b'));
      return { order: a.compare(b) };
    }
    case 'store.init':
      ctx.store = await capsa.Store.init(path.join(ctx.dir, 'store'), { padding: padding(args) });
      return {};
    case 'store.create_capsule': {
      const c = await (await ctx.getStore()).createCapsule(str(args, 'id'));
      return { id: c.id };
    }
    case 'store.capsules':
      return { ids: (await (await ctx.getStore()).capsules()).map((c) => c.id) };
    case 'capsule.bump': {
      const capsule = await (await ctx.getStore()).capsule(str(args, 'id'));
      const c = await capsule.bump({
        comment: optStr(args, 'comment'),
        carryOver: Array.isArray(args.carry_over) ? args.carry_over : undefined,
        createdBy: optStr(args, 'created_by'),
      });
      return { version: c.version };
    }
    case 'capsule.crates': {
      const capsule = await (await ctx.getStore()).capsule(str(args, 'id'));
      return { versions: (await capsule.crates()).map((c) => c.version) };
    }
    case 'capsule.latest': {
      const capsule = await (await ctx.getStore()).capsule(str(args, 'id'));
      const latest = await capsule.latest({ published: args.published === true });
      return { version: latest ? latest.version : null };
    }
    case 'file.write': {
      const p = path.join(ctx.dir, str(args, 'path'));
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, optStr(args, 'text') ?? '');
      return {};
    }
    case 'crate.publish': {
      const krate = await ctx.getCrate(args);
      const dest = optStr(args, 'dest');
      const published = await krate.publish(path.join(ctx.dir, str(args, 'src')), dest);
      return { path: slash(path.relative(krate.path, published)) };
    }
    case 'crate.seal':
      await (await ctx.getCrate(args)).seal();
      return {};
    case 'crate.metadata': {
      const m = await (await ctx.getCrate(args)).metadata();
      // The same keys as core's JSON sidecar (snake_case, absent values as null).
      return {
        schema: m.schema,
        version: m.version,
        created_by: m.createdBy,
        created_at: m.createdAt,
        comment: m.comment ?? null,
        parent: m.parent ?? null,
        tags: m.tags,
        published: m.published,
        published_at: m.publishedAt ?? null,
      };
    }
    case 'crate.files': {
      const krate = await ctx.getCrate(args);
      const root = krate.section(str(args, 'section'));
      const files = [];
      walk(root, root, files);
      files.sort();
      return { files };
    }
    case 'sequence.parse': {
      const s = capsa.Sequence.parse(str(args, 'pattern'));
      return {
        head: s.head,
        tail: s.tail,
        padding: s.padding,
        frames: s.frames.toString(),
        count: s.count,
      };
    }
    case 'sequence.format':
    case 'sequence.pattern': {
      const s = capsa.Sequence.parse(str(args, 'pattern'));
      const style = str(args, 'style');
      return { text: name === 'sequence.format' ? s.format(style) : s.pattern(style) };
    }
    case 'sequence.missing':
      return { frames: capsa.Sequence.parse(str(args, 'pattern')).missing().toString() };
    case 'sequence.path': {
      const pattern = str(args, 'pattern');
      if (!Number.isInteger(args.frame)) throw badArgs('"frame" must be an integer');
      return { path: capsa.Sequence.parse(pattern).path(args.frame) };
    }
    case 'frameset.parse': {
      const fs_ = capsa.FrameSet.parse(str(args, 'spec'));
      return {
        frames: fs_.count <= 1000 ? fs_.toArray() : null,
        text: fs_.toString(),
        count: fs_.count,
      };
    }
    case 'sequences_in': {
      const names = args.names;
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
        throw badArgs('"names" must be an array of strings');
      }
      return { sequences: capsa.sequencesIn(names).map((s) => s.format('hash')) };
    }
    default:
      return undefined;
  }
}

/** Does `actual` hold every key of `expected` with an equal value? (as the Rust runner) */
export function matches(expected, actual) {
  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(expected) && isObj(actual)) {
    return Object.entries(expected).every(
      ([k, v]) => Object.prototype.hasOwnProperty.call(actual, k) && matches(v, actual[k]),
    );
  }
  return deepEqual(expected, actual);
}

function deepEqual(a, b) {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return a === b;
}

/** Run one scenario; returns the failure text, or null when it passes. */
export async function runScenario(topic, scenario) {
  const ctx = new Ctx();
  try {
    for (const [i, step] of scenario.steps.entries()) {
      const at = `${topic} / ${JSON.stringify(scenario.name)} step ${i + 1} (${step.call})`;
      const args = step.args ?? {};
      let value;
      let error;
      try {
        value = await call(ctx, step.call, args);
        if (value === undefined) return `${at}: unknown call`;
        ctx.outputs.push(JSON.stringify(value));
      } catch (e) {
        error = e;
        ctx.outputs.push(`${e?.code}: ${e?.message}`);
      }
      let problem = null;
      if (error === undefined) {
        if (step.expect !== undefined && step.expect !== null && !matches(step.expect, value)) {
          problem = `got ${JSON.stringify(value)}, expected ${JSON.stringify(step.expect)}`;
        } else if (step.error != null) {
          problem = `got ${JSON.stringify(value)}, expected error ${step.error}`;
        }
      } else if (typeof error?.code !== 'string') {
        problem = `error without a code: ${error}`;
      } else if (step.error == null) {
        problem = `unexpected error ${error.code} (${error.message})`;
      } else if (error.code !== step.error) {
        problem = `got error ${error.code} (${error.message}), expected ${step.error}`;
      }
      if (problem) return `${at}: ${problem}`;
    }
    return null;
  } finally {
    await ctx.close();
  }
}
