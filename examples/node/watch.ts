// A small watcher: lists every capsule of a store with its latest crate, then prints staging
// events live.
//
//   cd bindings-node && npm run example:watch -- <store> [<staging state file>]
//   cd bindings-node && npm run example:watch -- --demo
//
// With a staging state file it follows the events of every process sharing that file (the
// CLI, other tools) until Ctrl-C. `--demo` makes a temporary store and state file, runs a few
// staging commands on the mock backend while subscribed, prints what arrives, unsubscribes
// and exits by itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  Capsule,
  Crate,
  MockBackend,
  StagingEvent,
  StagingManager,
  Store,
} from '../../bindings-node';

interface Row {
  capsule: string;
  latest: string;
  published: string;
  crates: number;
}

async function row(capsule: Capsule): Promise<Row> {
  const [latest, published, crates]: [Crate | null, Crate | null, Crate[]] = await Promise.all([
    capsule.latest(),
    capsule.latest({ published: true }),
    capsule.crates(),
  ]);
  return {
    capsule: capsule.id,
    latest: latest?.version ?? '-',
    published: published?.version ?? '-',
    crates: crates.length,
  };
}

async function listCapsules(store: Store): Promise<void> {
  const rows = await Promise.all((await store.capsules()).map(row));
  console.log(`store ${store.root}: ${rows.length} capsule(s)`);
  for (const r of rows) {
    console.log(
      `  ${r.capsule.padEnd(26)} latest ${r.latest.padEnd(6)} published ${r.published.padEnd(6)} (${r.crates} crates)`,
    );
  }
}

function show(e: StagingEvent): string {
  const when = e.at.slice(11, 19);
  if (e.event === 'StatusChanged') {
    const why = e.reason ? ` (${e.reason})` : '';
    return `${when} #${e.seq} ${e.name}: ${e.from ?? 'new'} -> ${e.to ?? 'gone'}${why}`;
  }
  return `${when} #${e.seq} ${e.name}: ${e.action} ${e.outcome}`;
}

/** Follow the state file's event feed (every process's events) until interrupted. */
async function follow(statePath: string): Promise<void> {
  const manager = await StagingManager.open(statePath, new MockBackend());
  let after = await manager.lastEventSeq();
  console.log(`following staging events in ${statePath} (Ctrl-C to stop)`);
  for (const s of await manager.list()) console.log(`  ${s.name.padEnd(20)} ${s.status} ${s.tag}`);
  const timer = setInterval(() => {
    manager
      .eventsSince(after)
      .then((events) => {
        for (const e of events) {
          console.log(show(e));
          after = e.seq;
        }
      })
      .catch((err: Error & { code?: string }) => console.error(`watch: [${err.code}] ${err.message}`));
  }, 500);
  process.on('SIGINT', () => {
    clearInterval(timer);
    manager.close();
  });
}

/** A self-contained tour: capsules, then live events of this process's own commands. */
async function demo(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-watch-'));
  try {
    const store = await Store.init(path.join(dir, 'show'));
    const sh010 = await store.createCapsule('sh010');
    const v1 = await sh010.bump({ comment: 'layout' });
    await v1.seal();
    await sh010.bump({ comment: 'anim' });
    await store.createCapsule('656796239c1b981568180614');
    await listCapsules(store);

    const backend = new MockBackend();
    backend.push('update', { outcome: 'failed', reason: 'image pull failed' });
    const manager = await StagingManager.open(path.join(dir, 'staging.db'), backend);
    const unsubscribe = manager.subscribe((e) => console.log(`event ${show(e)}`));
    await manager.create('sh010-review', '1.0.0', [{ key: 'API_TOKEN', value: 's3cret', private: true }]);
    await manager.update('sh010-review', '1.1.0');
    await manager.update('sh010-review', '1.1.1');
    await manager.delete('sh010-review');
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the last events arrive
    unsubscribe();
    manager.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(args: string[]): Promise<void> {
  if (args[0] === '--demo') return demo();
  const root = args[0] ?? process.env.CAPSA_STORE;
  if (!root) {
    console.error('usage: watch <store> [<staging state file>] | watch --demo');
    process.exit(2);
  }
  await listCapsules(await Store.open(root));
  if (args[1]) await follow(args[1]);
}

main(process.argv.slice(2)).catch((err: Error & { code?: string }) => {
  console.error(`watch: error [${err.code ?? 'UNKNOWN'}]: ${err.message}`);
  process.exit(1);
});
