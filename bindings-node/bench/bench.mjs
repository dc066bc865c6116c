// Node benches (not tests): `make bench-node` builds the addon in release mode and runs this.
//
// - sequencesIn over 100k names (100 shots x 1000 frames, shuffled): the whole call, names
//   crossing into Rust and sequences coming back.
// - the event loop's worst timer lag (a 5 ms interval) while 64 MiB are archived (deflate):
//   the tests only assert that timers fire at all during disk work; this is the figure.
// - the call overhead of `capsule.latest()` (a Promise settled from capsa's runtime) next to a synchronous
//   call (`Version.parse`), measured one awaited call after another.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const capsa = require('../index.js');

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { median: at(0.5), p90: at(0.9), min: sorted[0] };
}

function fmt(ms) {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} µs`;
}

async function timeIt(runs, fn) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    samples.push(performance.now() - t0);
  }
  return stats(samples);
}

// sequencesIn, 100k names.
const names = [];
for (let shot = 0; shot < 100; shot++) {
  for (let f = 1; f <= 1000; f++) names.push(`sh${String(shot * 10).padStart(4, '0')}_v001.${String(1000 + f).padStart(4, '0')}.exr`);
}
for (let i = names.length - 1; i > 0; i--) {
  const j = Math.floor(Math.random() * (i + 1));
  [names[i], names[j]] = [names[j], names[i]];
}
const found = capsa.sequencesIn(names);
if (found.length !== 100) throw new Error(`expected 100 sequences, got ${found.length}`);
const seq = await timeIt(20, () => capsa.sequencesIn(names));
console.log(`sequencesIn(100k names)      median ${fmt(seq.median)}  p90 ${fmt(seq.p90)}  (${(names.length / seq.median / 1000).toFixed(1)} M names/s)`);

// capsule.latest() call overhead.
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capsa-bench-'));
try {
  const store = await capsa.Store.init(path.join(dir, 'store'));
  const capsule = await store.createCapsule('sh010');
  for (let i = 0; i < 50; i++) await capsule.bump();
  for (let i = 0; i < 200; i++) await capsule.latest(); // warm up
  const latest = await timeIt(5000, () => capsule.latest());
  console.log(`await capsule.latest()       median ${fmt(latest.median)}  p90 ${fmt(latest.p90)}  (50 crates)`);
  const parse = await timeIt(5000, () => capsa.Version.parse('v042'));
  console.log(`Version.parse (synchronous)  median ${fmt(parse.median)}  p90 ${fmt(parse.p90)}`);
  const batch = 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: batch }, () => capsule.latest()));
  const each = (performance.now() - t0) / batch;
  console.log(`capsule.latest() x${batch} at once  ${fmt(each)} per call (capsa runtime)`);

  const big = await capsule.bump();
  for (let i = 0; i < 8; i++) fs.writeFileSync(path.join(big.section('artifacts'), `big${i}.bin`), Buffer.alloc(8 << 20, i));
  const lags = [];
  for (let run = 0; run < 5; run++) {
    let worst = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last - 5);
      last = now;
    }, 5);
    try {
      await capsa.archive(capsule, path.join(dir, `lag${run}.zip`), { policy: 'deflate' });
    } finally {
      clearInterval(timer);
    }
    lags.push(worst);
  }
  const lag = stats(lags);
  console.log(`timer lag during archive     median ${fmt(lag.median)}  worst ${fmt(Math.max(...lags))}  (64 MiB deflate, 5 runs)`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
