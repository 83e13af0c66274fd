// The page side of the CPU engine's shard workers (see team.rs and team/web.rs): start them,
// hand them their rows, let them serve, stop them. The worker script is hearth-worker.js (worker
// mode's, which also serves as a shard), at the package root; this file is wasm-bindgen's copy at
// snippets/hearth-<hash>/src/infer/cpu/team/workers.js, six folders below it. The Worker is
// created in the `new Worker(new URL(..., import.meta.url), { type: 'module' })` form that
// bundlers follow.

/** Resolves on the worker's next `{ type: want }`, rejects on an `error` message or event. */
function reply(worker, want) {
  return new Promise((resolve, reject) => {
    const settle = (f, v) => {
      worker.removeEventListener('message', onMessage);
      worker.removeEventListener('error', onError);
      f(v);
    };
    const onMessage = (e) => {
      if (e.data?.type === want) settle(resolve);
      else if (e.data?.type === 'error') settle(reject, new Error(e.data.message));
    };
    const onError = (e) => {
      e.preventDefault?.();
      settle(reject, new Error(e.message || 'the shard worker script failed to load'));
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', onError);
  });
}

function within(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from a shard worker ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Starts `parts - 1` shard workers on the compiled `module`; resolves when every one is ready. */
export async function startShards(module, parts, timeoutMs) {
  const workers = [];
  try {
    for (let part = 1; part < parts; part++) {
      const worker = new Worker(new URL('../../../../../../hearth-worker.js', import.meta.url), { type: 'module' });
      workers.push(worker);
      worker.postMessage({ type: 'init', module, part });
    }
    await within(Promise.all(workers.map((w) => reply(w, 'ready'))), timeoutMs, 'starting');
    return workers;
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  }
}

/** Hands part `part` its rows of matrix `id` (`bytes` is a view of wasm memory: copied). */
export function postWeight(workers, part, id, ty, rows, cols, bytes) {
  const copy = bytes.slice();
  workers[part - 1].postMessage({ type: 'weight', id, ty, rows, cols, bytes: copy.buffer }, [copy.buffer]);
}

/** Gives every worker the shared buffer; resolves when all serve (or rejects with a failure). */
export async function serveShards(workers, shared, timeoutMs) {
  const acks = workers.map((w) => reply(w, 'serving'));
  for (const w of workers) w.postMessage({ type: 'serve', shared });
  await within(Promise.all(acks), timeoutMs, 'taking its weights');
}

export function stopShards(workers) {
  for (const w of workers) w.terminate();
}

/** Whether this global may block in `Atomics.wait` (a worker; a window may not). */
export function canBlock() {
  return typeof globalThis.document === 'undefined' && typeof globalThis.WorkerGlobalScope !== 'undefined';
}
