// A small watcher: lists every capsule of a store with its latest crate.
//
//   cd bindings-node && npm run example:watch -- /mnt/show
//
// (compiles this file with tsc into target/examples-node and runs it with node).
import { Capsule, Crate, Store } from '../../bindings-node';

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

async function main(root: string): Promise<void> {
  const store = await Store.open(root);
  const rows = await Promise.all((await store.capsules()).map(row));
  console.log(`store ${store.root}: ${rows.length} capsule(s)`);
  for (const r of rows) {
    console.log(`${r.capsule.padEnd(26)} latest ${r.latest.padEnd(6)} published ${r.published.padEnd(6)} (${r.crates} crates)`);
  }
}

const root = process.argv[2] ?? process.env.CAPSA_STORE;
if (!root) {
  console.error('usage: watch <store directory>   (or set CAPSA_STORE)');
  process.exit(2);
}
main(root).catch((err: Error & { code?: string }) => {
  console.error(`watch: error [${err.code ?? 'UNKNOWN'}]: ${err.message}`);
  process.exit(1);
});
