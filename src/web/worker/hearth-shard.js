// A shard worker of the CPU engine (started by the engine itself; see
// src/infer/cpu/team.rs): one more instance of the package's compiled WebAssembly module that
// holds some rows of every large matrix and computes them when the model's side asks, through a
// SharedArrayBuffer.
//
// Messages, in order: `{ type: 'init', module, part }` -> `{ type: 'ready' }`; any number of
// `{ type: 'weight', id, ty, rows, cols, bytes }`; `{ type: 'serve', shared }` -> `{ type:
// 'serving' }`, after which the worker loops in Atomics.wait until it is terminated. A failure
// answers `{ type: 'error', message }` (at once, or at `serve` for a weight's).
import init, { ShardWorker } from './hearth.js';

let shard = null;
let failed = null;
let queue = Promise.resolve();

self.onmessage = (e) => {
  queue = queue.then(() => handle(e.data));
};

async function handle(m) {
  try {
    if (failed) throw failed;
    if (m.type === 'init') {
      await init({ module_or_path: m.module });
      shard = new ShardWorker(m.part);
      self.postMessage({ type: 'ready' });
    } else if (m.type === 'weight') {
      shard.addWeight(m.id, m.ty, m.rows, m.cols, new Uint8Array(m.bytes));
    } else if (m.type === 'serve') {
      self.postMessage({ type: 'serving' });
      shard.serve(m.shared);
    }
  } catch (err) {
    failed = err instanceof Error ? err : new Error(String(err));
    if (m.type !== 'weight') self.postMessage({ type: 'error', message: String(failed.message) });
  }
}
