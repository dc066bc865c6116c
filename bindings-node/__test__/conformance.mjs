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

class Ctx {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-conformance-'));
    this.store = null;
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

  close() {
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

/** Run one call; `undefined` when the call is unknown. */
async function call(ctx, name, args) {
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
      } catch (e) {
        error = e;
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
    ctx.close();
  }
}
