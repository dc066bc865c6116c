// Archive a capsule into one verified zip with a progress bar; Ctrl-C cancels cleanly.
//
//   cd bindings-node && npm run example:archive -- <store> <capsule id> <dest.zip>
import { archive, Progress, Store } from '../../bindings-node';

async function main([root, id, dest]: string[]): Promise<void> {
  if (!root || !id || !dest) {
    console.error('usage: archive <store> <capsule id> <dest.zip>');
    process.exit(2);
  }
  const store = await Store.open(root);
  const capsule = await store.capsule(id);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const onProgress = (p: Progress): void => {
    const pct = p.bytesTotal > 0 ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 100;
    process.stderr.write(`\r${pct}%  ${p.filesDone}/${p.filesTotal} files`);
  };
  const report = await archive(capsule, dest, { onProgress, signal: controller.signal });
  process.stderr.write('\n');
  console.log(`${report.path}: ${report.files} files, ${report.bytes} bytes -> ${report.archiveBytes} bytes (verified: ${report.verified})`);
}

main(process.argv.slice(2)).catch((err: Error & { code?: string }) => {
  process.stderr.write('\n');
  console.error(`archive: error [${err.code ?? 'UNKNOWN'}]: ${err.message}`);
  process.exit(err.code === 'CANCELLED' ? 130 : 1);
});
