// Hearth's worker: the ModelManager of a page that asked for worker mode
// (`ModelManager.create({ worker })`, see hearth-worker-client.js for the page side). Every model,
// tokenizer and generation lives here; the page holds proxies with the same API.
//
// The protocol, in the order things happen:
// - at once, before the WebAssembly module, and again for each `{ type: 'ping' }` (a Worker the
//   app made may have said it before the page listened): `{ type: 'hello' }`;
// - page `{ type: 'create', options }` -> `{ type: 'ready' }` with the first batch before it, or
//   `{ type: 'fatal', stage: 'wasm' | 'create', error }` (the page terminates the worker);
// - page `{ type: 'calls', messages }`: what one synchronous run of page code asked, in order:
//   `{ type: 'call', seq, id?, target, method, args }` (each starts synchronously, in the order
//   sent, so the core's own ordering (loads in call order, tasks by priority) holds), `abort` (a
//   call's signal) and `stop` (an onToken that returned false);
// - worker `{ type: 'batch', state?, items }`: everything that happened since the last batch, in
//   order (status events, a generation's tokens, replies, task tokens and results). `state` is a
//   snapshot for the page's synchronous getters, taken after the items happened and applied on
//   the page before them, so a getter is never behind an event or a settled promise.
import init, * as hearth from './hearth.js';

const post = (message) => self.postMessage(message);
post({ type: 'hello' });

let manager = null;
let memory = null;
/** Page executor id -> { executor, ids: Map<worker task id, page task id>, handles: Map<page id, handle> }. */
const executors = new Map();
/** Call id -> AbortController, for `abort` messages; call id -> a stop flag for onToken. */
const controllers = new Map();
const stopped = new Set();
let items = [];
let scheduled = false;
let lastState = '';
let ack = 0;

/** An error as data: its class name, message and every field (code, modelKey, suggestions, ...). */
function serializeError(error) {
  if (error && typeof error === 'object') {
    const fields = {};
    for (const [key, value] of Object.entries(error)) {
      try {
        fields[key] = structuredClone(value);
      } catch {
        // A field that cannot cross (a function) is left out.
      }
    }
    return { name: String(error.name || 'Error'), message: String(error.message ?? ''), stack: error.stack, fields };
  }
  return { name: 'Error', message: String(error), fields: {} };
}

/** Plain data for the page: wasm-bindgen objects are never sent. */
function snapshot() {
  const loaded = manager.loadedModels();
  const infos = {};
  for (const m of loaded) {
    const model = manager.getModel(m.key);
    if (model) {
      infos[m.key] = model.info;
      model.free();
    }
  }
  const catalog = manager.catalog();
  const fits = {};
  for (const row of catalog) {
    try {
      fits[row.key] = manager.canLoadModel(row.key);
    } catch (e) {
      fits[row.key] = { error: serializeError(e) };
    }
  }
  const execs = {};
  for (const [id, x] of executors) {
    const page = (workerId) => x.ids.get(workerId) ?? workerId;
    const running = x.executor.running;
    execs[id] = {
      pending: x.executor.pending().map((p) => ({ ...p, id: page(p.id) })),
      running: running === undefined ? undefined : page(running),
    };
  }
  return {
    current: manager.currentModel,
    loading: manager.loadingModel,
    ready: manager.isReady,
    backend: manager.backend,
    loaded,
    infos,
    catalog,
    fits,
    stats: memory.getStats(),
    budget: memory.budget,
    adapter: memory.adapter,
    limits: memory.limits,
    executors: execs,
  };
}

/** Sends what happened since the last batch, with the state when it changed. */
/** A generation's token: it changes no state, so a batch of only these needs no new snapshot. */
const isToken = (item) => item.kind === 'token' || (item.kind === 'event' && item.event.type === 'token') || (item.kind === 'task' && !item.done);

function flush() {
  scheduled = false;
  if (!manager) return; // the events of `create` go out with the first state
  let changed = false;
  let state;
  if (lastState === '' || !items.every(isToken)) {
    state = snapshot();
    const json = JSON.stringify(state);
    changed = json !== lastState;
    lastState = json;
  }
  if (!changed && items.length === 0) return;
  const batch = { type: 'batch', ack, items };
  if (changed) batch.state = state;
  items = [];
  post(batch);
}

/** Queues an item for the next batch (a microtask later: never inside a call into the module). */
function emit(item) {
  items.push(item);
  if (!scheduled) {
    scheduled = true;
    queueMicrotask(flush);
  }
}

function reply(id, promise) {
  Promise.resolve(promise).then(
    (value) => emit({ kind: 'reply', id, ok: true, value }),
    (error) => emit({ kind: 'reply', id, ok: false, error: serializeError(error) }),
  ).finally(() => {
    controllers.delete(id);
    stopped.delete(id);
  });
}

/** An AbortController for call `id`, already aborted when the page's signal was. */
function controllerFor(id, aborted) {
  const controller = new AbortController();
  if (aborted) controller.abort();
  controllers.set(id, controller);
  return controller;
}

function withSignal(options, id, aborted) {
  if (aborted === undefined) return options;
  return { ...(options || {}), signal: controllerFor(id, aborted).signal };
}

const MODEL_DISPOSED = { name: 'InvalidInputError', message: 'This model was disposed; load it again to generate.', fields: { code: 'MODEL_DISPOSED' } };

/** The calls the page can make. Each returns a value or a promise (sent back as the reply). */
const calls = {
  manager: {
    init: ({ id, args: [key, aborted] }) => manager.init(key, withSignal(undefined, id, aborted)),
    switchModel: ({ id, args: [key, aborted] }) => manager.switchModel(key, withSignal(undefined, id, aborted)),
    preload: ({ id, args: [key, aborted] }) => manager.preload(key, withSignal(undefined, id, aborted)),
    checkModel: ({ id, args: [key, aborted] }) => manager.checkModel(key, withSignal(undefined, id, aborted)),
    unload: ({ args: [key] }) => manager.unload(key),
    registerModel: ({ args: [entry] }) => manager.registerModel(entry),
    cachedModels: () => manager.cachedModels(),
    clearCache: ({ args: [key] }) => manager.clearCache(key),
    terminate: async () => {
      for (const m of manager.loadedModels()) await manager.unload(m.key).catch(() => false);
    },
  },
  memory: {
    refresh: () => memory.refresh(),
    emitMetrics: ({ args: [key] }) => { memory.emitMetrics(key); },
    registerLoaded: ({ args }) => memory.registerLoaded(...args),
    registerUnloaded: ({ args }) => memory.registerUnloaded(...args),
    touch: ({ args }) => memory.touch(...args),
    pin: ({ args }) => memory.pin(...args),
    unpin: ({ args }) => memory.unpin(...args),
    setBudgetBytes: ({ args }) => memory.setBudgetBytes(...args),
    setSimulationLowVRAM: ({ args }) => memory.setSimulationLowVRAM(...args),
    setSimulatedBudget: ({ args }) => memory.setSimulatedBudget(...args),
    setSimulatedLimits: ({ args }) => memory.setSimulatedLimits(...args),
  },
  model: {
    // `onToken` stays on the page: each token goes there, in order with the status events; the
    // page answers `false` with a `stop` message, seen at the next token.
    generate: ({ id, key, args: [input, options, aborted, wantTokens] }) => {
      const model = manager.getModel(key);
      if (!model) return Promise.reject(Object.assign(new hearth.InvalidInputError(MODEL_DISPOSED.message), MODEL_DISPOSED.fields));
      const opts = withSignal(options, id, aborted) || {};
      if (wantTokens) {
        opts.onToken = (t) => {
          emit({ kind: 'token', id, token: t });
          return !stopped.has(id);
        };
      }
      const result = model.generate(input, opts);
      model.free();
      return result;
    },
    dispose: ({ key }) => {
      const model = manager.getModel(key);
      if (model) {
        model.dispose();
        model.free();
      }
    },
  },
  executor: {
    create: ({ exec }) => {
      executors.set(exec, { executor: new hearth.TaskExecutor(manager), ids: new Map(), handles: new Map() });
    },
    // A task's tokens and its result come back as `task` items; the task's `onToken` and its
    // iterator live on the page.
    enqueue: ({ exec, args: [task, pageId, aborted, wantTokens] }) => {
      const x = executors.get(exec);
      const taskKey = `${exec}:${pageId}`;
      const params = { ...(task.params || {}) };
      params.onToken = (t) => {
        emit({ kind: 'task', exec, task: pageId, token: t });
        return wantTokens ? !stopped.has(taskKey) : true;
      };
      let handle;
      try {
        handle = x.executor.enqueue({ ...task, params, signal: aborted ? AbortSignal.abort() : undefined });
      } catch (error) {
        emit({ kind: 'task', exec, task: pageId, done: true, ok: false, error: serializeError(error) });
        return;
      }
      x.ids.set(handle.id, pageId);
      x.handles.set(pageId, handle);
      handle.result.then(
        (value) => emit({ kind: 'task', exec, task: pageId, done: true, ok: true, value: { ...value, taskId: pageId } }),
        (error) => emit({ kind: 'task', exec, task: pageId, done: true, ok: false, error: serializeError(error && typeof error === 'object' && 'taskId' in error ? Object.assign(error, { taskId: pageId }) : error) }),
      ).finally(() => {
        x.handles.delete(pageId);
        stopped.delete(taskKey);
        handle.free();
      });
    },
    cancel: ({ exec, args: [pageId] }) => {
      const handle = executors.get(exec)?.handles.get(pageId);
      return handle ? handle.cancel() : false;
    },
  },
};

function call(message) {
  ack = message.seq;
  const group = calls[message.target];
  const f = group && group[message.method];
  let result;
  try {
    if (!f) throw new Error(`Hearth worker: no ${message.target}.${message.method}`);
    result = f(message);
  } catch (error) {
    result = Promise.reject(error);
  }
  if (message.id !== undefined) reply(message.id, result);
  else Promise.resolve(result).catch((error) => emit({ kind: 'failed', method: message.method, error: serializeError(error) }));
  // Synchronous calls change state now: the next batch carries it (and the ack).
  emit({ kind: 'ack' });
}

let creating = false;

async function create(options) {
  if (creating) return;
  creating = true;
  try {
    await init();
  } catch (error) {
    post({ type: 'fatal', stage: 'wasm', error: serializeError(error) });
    return;
  }
  try {
    const streamer = new hearth.SseStreamer();
    streamer.subscribe((event) => emit({ kind: 'event', event }));
    manager = await hearth.ModelManager.create({ ...options, streamer });
    memory = manager.memoryManager;
  } catch (error) {
    post({ type: 'fatal', stage: 'create', error: serializeError(error) });
    return;
  }
  flush();
  post({ type: 'ready' });
}

/** One message of a page's batch (the calls of one synchronous run of page code, in order). */
function dispatch(data) {
  switch (data.type) {
    case 'call':
      call(data);
      break;
    case 'abort':
      controllers.get(data.id)?.abort();
      break;
    case 'stop':
      stopped.add(data.id);
      break;
    default:
      break;
  }
}

// ---- A shard worker of the CPU engine ---------------------------------------------------------
// The same script serves as a shard worker (started by the CPU engine itself, from the page or
// from this worker; see src/infer/cpu/team.rs): one more instance of the package's compiled
// WebAssembly module that holds some rows of every large matrix and computes them when the
// model's side asks, through a SharedArrayBuffer. One script for both, so that a bundler sees one
// worker entry (two worker scripts that each import the package would import each other).
//
// Messages, in order: `{ type: 'init', module, part }` -> `{ type: 'ready' }`; any number of
// `{ type: 'weight', id, ty, rows, cols, bytes }`; `{ type: 'serve', shared }` -> `{ type:
// 'serving' }`, after which the worker loops in Atomics.wait until it is terminated. A failure
// answers `{ type: 'error', message }` (at once, or at `serve` for a weight's). The `hello` this
// script says first is ignored by the engine.
let shard = null;
let shardFailed = null;
let shardQueue = Promise.resolve();

async function shardMessage(m) {
  try {
    if (shardFailed) throw shardFailed;
    if (m.type === 'init') {
      await init({ module_or_path: m.module });
      shard = new hearth.ShardWorker(m.part);
      post({ type: 'ready' });
    } else if (m.type === 'weight') {
      shard.addWeight(m.id, m.ty, m.rows, m.cols, new Uint8Array(m.bytes));
    } else if (m.type === 'serve') {
      post({ type: 'serving' });
      shard.serve(m.shared);
    }
  } catch (err) {
    shardFailed = err instanceof Error ? err : new Error(String(err));
    if (m.type !== 'weight') post({ type: 'error', message: String(shardFailed.message) });
  }
}

self.onmessage = ({ data }) => {
  switch (data && data.type) {
    case 'init':
    case 'weight':
    case 'serve':
      shardQueue = shardQueue.then(() => shardMessage(data));
      break;
    case 'ping':
      post({ type: 'hello' });
      break;
    case 'create':
      create(data.options);
      break;
    case 'calls':
      for (const message of data.messages) dispatch(message);
      break;
    default:
      break;
  }
};
