// Worker mode, the page's side: `ModelManager.create({ worker })` starts hearth-worker.js (or
// takes a Worker the app made on it), creates the real ModelManager there, and returns a manager
// with the same API whose objects are proxies:
// - `sseStreamer` is a real SseStreamer of the page's own module instance: every status event of
//   the worker is emitted on it, in order (so `addEventListener`, `replay`, `since`, `eventStream`
//   work as they do on the main thread);
// - synchronous getters (`currentModel`, `loadedModels()`, `catalog()`, `pending()`, ...) read the
//   state the worker sends with each batch, which the page applies before the batch's events and
//   replies (see the protocol in hearth-worker.js);
// - synchronous calls that check their arguments or answer from the memory account
//   (`registerModel`, `enqueue`, `memoryManager.canLoadModel`, `requirementFor`, the setters) run
//   first on a shadow ModelManager on the page's CPU backend: it throws the same typed errors, and
//   its memory account mirrors the worker's (budget, limits, resident models), so the answers are
//   the worker's; the call then goes to the worker, in order with every other call;
// - errors cross as data (class name and fields) and are rebuilt with the page's error classes.
//
// hearth.js links this module to its classes at load (`linkWorkerMode`), so neither this file
// nor its proxies import hearth.js; `new URL('./hearth-worker.js', import.meta.url)` below is the
// pattern Vite and webpack turn into a worker chunk.

import {
  api, EXECUTOR, CLOSE, error, workerFailed, rebuild, crossable,
  WorkerMemoryManager, WorkerLanguageModel, WorkerTaskExecutor, WorkerTaskHandle,
} from './hearth-worker-proxies.js';

const START_TIMEOUT_MS = 30_000;
/** Re-emits a worker's status event on the page's streamer (ids and order as the worker's). */
function relay(streamer, event) {
  const key = event.modelKey;
  const d = event.data;
  switch (event.type) {
    case 'info': streamer.streamInfo(d, key); break;
    case 'error': streamer.streamError(d, key); break;
    case 'progress': streamer.streamProgress({ phase: d.phase, loaded: d.loaded, total: d.total }, key); break;
    case 'metrics': streamer.streamMetrics(d, key); break;
    case 'token': streamer.streamToken(d, key); break;
    case 'done': streamer.streamDone(d, key); break;
    default: break;
  }
}

/** The page's end of the worker: ordered calls, replies, the state, the relay. */
class Connection {
  constructor(worker, streamer) {
    this.worker = worker;
    this.streamer = streamer;
    this.seq = 0;
    this.ack = 0;
    this.nextId = 0;
    this.state = null;
    this.version = 0;
    this.replies = new Map();
    this.tokens = new Map();
    this.tasks = new Map();
    this.closed = null;
    this.handshake = null;
    this.outbox = [];
    worker.onmessage = ({ data }) => this.receive(data);
    worker.onmessageerror = () => this.fail(workerFailed('A message from the Hearth worker could not be read.'));
    worker.onerror = (e) => {
      if (e && typeof e.preventDefault === 'function') e.preventDefault();
      const detail = e && e.message ? `: ${e.message}` : '';
      this.fail(workerFailed(`The Hearth worker failed${detail}. Check that hearth-worker.js is served next to hearth.js (as a JavaScript module, same origin) and that the browser supports module workers.`));
    };
  }

  /** Before `ready`: the start fails; after: a status `error` event (the manager keeps going). */
  fail(e) {
    if (this.handshake) {
      this.handshake.reject(e);
    } else if (!this.closed) {
      this.streamer.streamError(e);
    }
  }

  receive(data) {
    switch (data && data.type) {
      case 'hello':
        this.handshake?.hello();
        break;
      case 'ready':
        this.handshake?.resolve();
        break;
      case 'fatal':
        this.handshake?.reject(data.stage === 'wasm'
          ? workerFailed(`The Hearth worker could not instantiate the WebAssembly module: ${data.error.message}. Check that hearth_bg.wasm is served next to hearth.js (with the application/wasm type).`, { cause: data.error.message })
          : rebuild(data.error));
        break;
      case 'batch':
        this.batch(data);
        break;
      default:
        break;
    }
  }

  batch({ ack, state, items }) {
    this.ack = ack;
    if (state) {
      this.state = state;
      this.version += 1;
    }
    for (const item of items) {
      switch (item.kind) {
        case 'event':
          relay(this.streamer, item.event);
          break;
        case 'token':
          this.tokens.get(item.id)?.(item.token);
          break;
        case 'reply': {
          const r = this.replies.get(item.id);
          this.replies.delete(item.id);
          this.tokens.delete(item.id);
          if (r) {
            r.done();
            if (item.ok) r.resolve(item.value);
            else r.reject(rebuild(item.error));
          }
          break;
        }
        case 'task':
          this.tasks.get(`${item.exec}:${item.task}`)?.(item);
          break;
        case 'failed':
          this.streamer.streamError(rebuild(item.error));
          break;
        default:
          break;
      }
    }
  }

  /** Whether the worker has seen every call the page sent (its state includes them). */
  get caughtUp() {
    return this.ack >= this.seq;
  }

  /**
   * Queues a message for the worker. The messages of one synchronous run of page code go as one
   * (a microtask later), so the worker runs them in one go too: two `enqueue`s in a row are both
   * queued before its pump picks the first task, as on the main thread.
   */
  post(message) {
    if (this.closed) return;
    this.outbox.push(message);
    if (this.outbox.length === 1) {
      queueMicrotask(() => {
        const messages = this.outbox;
        this.outbox = [];
        if (!this.closed) this.worker.postMessage({ type: 'calls', messages });
      });
    }
  }

  send(message) {
    if (this.closed) throw this.closed;
    this.seq += 1;
    message.seq = this.seq;
    this.post(message);
    return message.seq;
  }

  /** A call without an answer (a synchronous setter, already checked on the page). */
  fire(target, method, args, extra = {}) {
    this.send({ type: 'call', target, method, args, ...extra });
  }

  /** A call whose promise settles with the worker's reply; `signal` aborts it there. */
  call(target, method, args, extra = {}, signal = undefined, onToken = undefined) {
    return new Promise((resolve, reject) => {
      const id = ++this.nextId;
      let onAbort = null;
      const done = () => {
        if (onAbort) signal.removeEventListener('abort', onAbort);
      };
      try {
        structuredClone(args);
        this.send({ type: 'call', id, target, method, args, ...extra });
      } catch (e) {
        reject(e instanceof DOMException && e.name === 'DataCloneError'
          ? error('InvalidInputError', 'INVALID_OPTIONS', `${method}: its arguments cannot be sent to the worker: ${e.message}`, { field: method })
          : e);
        return;
      }
      this.replies.set(id, { resolve, reject, done });
      if (onToken) this.tokens.set(id, onToken(id));
      if (signal && !signal.aborted) {
        onAbort = () => this.post({ type: 'abort', id });
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
  }

  close(reason) {
    if (this.closed) return;
    this.closed = reason;
    this.worker.terminate();
    for (const r of this.replies.values()) {
      r.done();
      r.reject(reason);
    }
    this.replies.clear();
    this.tokens.clear();
    for (const sink of this.tasks.values()) sink({ done: true, ok: false, error: reason });
    this.tasks.clear();
  }
}

/** The `aborted` flag a call carries when it has a signal (`undefined` without one). */
const abortedFlag = (options) => (options && options.signal ? Boolean(options.signal.aborted) : undefined);

/** The manager on the page. Same API as the main-thread `ModelManager`. */
class WorkerModelManager {
  #conn;
  #shadow;
  #memory;
  #nextExecutor = 0;

  constructor(conn, shadow) {
    this.#conn = conn;
    this.#shadow = shadow;
    this.#memory = new WorkerMemoryManager(conn, shadow.memoryManager);
  }

  get #state() {
    return this.#conn.state;
  }

  get inWorker() { return true; }
  get sseStreamer() { return this.#conn.streamer; }
  get memoryManager() { return this.#memory; }
  get backend() { return this.#state.backend; }
  get isReady() { return this.#state.ready; }
  get currentModel() { return this.#state.current; }
  get loadingModel() { return this.#state.loading; }

  init(defaultKey, options) {
    return this.#conn.call('manager', 'init', [defaultKey ?? undefined, abortedFlag(options)], {}, options?.signal);
  }

  switchModel(key, options) {
    return this.#conn.call('manager', 'switchModel', [key, abortedFlag(options)], {}, options?.signal);
  }

  preload(key, options) {
    return this.#conn.call('manager', 'preload', [key, abortedFlag(options)], {}, options?.signal);
  }

  checkModel(key, options) {
    return this.#conn.call('manager', 'checkModel', [key, abortedFlag(options)], {}, options?.signal);
  }

  unload(key) {
    return this.#conn.call('manager', 'unload', [key]);
  }

  isModelLoaded(key) {
    return this.#state.loaded.some((m) => m.key === key);
  }

  loadedModels() {
    return structuredClone(this.#state.loaded);
  }

  getModel(key) {
    return Object.hasOwn(this.#state.infos, key) ? new WorkerLanguageModel(this.#conn, key) : undefined;
  }

  catalog() {
    if (this.#conn.caughtUp) return structuredClone(this.#state.catalog);
    // Page calls (a simulated budget, a registered model) are still on their way to the worker:
    // the rows and their fits come from the shadow, which has them already; what only the worker
    // knows (which models are loaded, whose requirement is read from the file) from its last state.
    const worker = new Map(this.#state.catalog.map((row) => [row.key, row]));
    return this.#shadow.catalog().map((row) => {
      const known = worker.get(row.key);
      return known ? { ...row, loaded: known.loaded, exact: known.exact } : row;
    });
  }

  canLoadModel(key) {
    // As in `catalog()`: until the worker has seen every page call, the shadow answers.
    if (!this.#conn.caughtUp) return this.#shadow.canLoadModel(key);
    const fit = Object.hasOwn(this.#state.fits, key) ? this.#state.fits[key] : undefined;
    if (fit === undefined) return this.#shadow.canLoadModel(key); // throws for an unknown key
    if (fit.error) throw rebuild(fit.error);
    return structuredClone(fit);
  }

  registerModel(entry) {
    this.#shadow.registerModel(entry); // the same checks and typed errors, at once
    this.#conn.fire('manager', 'registerModel', [crossable(entry, 'entry')]);
  }

  cachedModels() {
    return this.#conn.call('manager', 'cachedModels', []);
  }

  clearCache(key) {
    return this.#conn.call('manager', 'clearCache', [key ?? undefined]);
  }

  async terminate() {
    if (this.#conn.closed) return;
    await this.#conn.call('manager', 'terminate', []).catch(() => undefined);
    this.free();
  }

  /** The executor proxies' way in. */
  [EXECUTOR]() {
    this.#nextExecutor += 1;
    return { conn: this.#conn, id: this.#nextExecutor, shadow: new api.TaskExecutor(this.#shadow), state: () => this.#state };
  }

  free() {
    if (this.#conn.closed) return;
    this.#conn.close(error('CancelledError', 'WORKER_TERMINATED', 'The manager was terminated; its worker is gone.'));
    this.#memory[CLOSE]();
    this.#shadow.free();
  }

  [Symbol.dispose]() {
    this.free();
  }
}

/** Starts the package's own worker script (the bundler-visible form). */
function startWorker() {
  try {
    return new Worker(new URL('./hearth-worker.js', import.meta.url), { type: 'module' });
  } catch (e) {
    throw workerFailed(`The Hearth worker could not be started: ${e && e.message ? e.message : e}.`, { cause: String(e) });
  }
}

/** `ModelManager.create({ worker, ... })`. */
async function createWorkerManager(options) {
  await api.init(); // the page's own module: the status stream and the shadow
  const { worker: given, streamer: givenStreamer, memoryManager, ...rest } = options;
  if (memoryManager != null) {
    throw error('InvalidInputError', 'INVALID_OPTIONS', 'options.memoryManager cannot be used with `worker`: the memory account lives in the worker. Pass `backend` and `deviceMemoryGb`, and use `manager.memoryManager`.', { field: 'memoryManager' });
  }
  if (givenStreamer != null && !(givenStreamer instanceof api.SseStreamer)) {
    throw error('InvalidInputError', 'INVALID_OPTIONS', 'options.streamer must be an SseStreamer.', { field: 'streamer' });
  }
  const external = typeof Worker !== 'undefined' && given instanceof Worker;
  if (given !== true && !external) {
    throw error('InvalidInputError', 'INVALID_OPTIONS', 'options.worker must be `true` or a Worker running hearth-worker.js.', { field: 'worker' });
  }
  if (typeof Worker === 'undefined') throw workerFailed('This environment has no Worker.');
  const data = crossable(rest, 'options');
  const streamer = givenStreamer ?? new api.SseStreamer();
  const worker = external ? given : startWorker();
  const conn = new Connection(worker, streamer);
  let timer = null;
  try {
    await new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(workerFailed(`The Hearth worker did not start within ${START_TIMEOUT_MS / 1000} s. A Worker passed as \`worker\` must run hearth-worker.js.`)), START_TIMEOUT_MS);
      conn.handshake = {
        hello: () => {
          if (timer === null) return;
          clearTimeout(timer);
          timer = null;
          worker.postMessage({ type: 'create', options: data });
        },
        resolve,
        reject,
      };
      // A Worker the app made may have said hello before anyone listened: ask again.
      if (external) worker.postMessage({ type: 'ping' });
    }).finally(() => {
      conn.handshake = null;
      clearTimeout(timer);
    });
    const shadowStreamer = new api.SseStreamer({ bufferSize: 1 });
    const shadow = await api.ModelManager.create({ ...data, backend: 'cpu', cache: false, streamer: shadowStreamer });
    return new WorkerModelManager(conn, shadow);
  } catch (e) {
    conn.close(e);
    throw e;
  }
}

/**
 * Called once by hearth.js with its classes: wraps `ModelManager.create` (the `worker` option),
 * gives main-thread managers `terminate()` and `inWorker`, makes the worker-mode proxies
 * `instanceof` the classes they stand for, and returns the `TaskExecutor` to export (one that
 * takes either kind of manager).
 */
export function linkWorkerMode(linked) {
  Object.assign(api, linked);
  const { ModelManager, TaskExecutor, TaskHandle, LanguageModel, MemoryManager } = linked;
  const create = ModelManager.create;
  ModelManager.create = function createManager(options) {
    if (options && typeof options === 'object' && options.worker != null && options.worker !== false) {
      return createWorkerManager(options);
    }
    return create.call(ModelManager, options);
  };
  Object.defineProperty(ModelManager.prototype, 'inWorker', { get() { return false; }, configurable: true });
  ModelManager.prototype.terminate = async function terminate() {
    for (const m of this.loadedModels()) await this.unload(m.key).catch(() => false);
  };
  for (const [proxy, real] of [[WorkerModelManager, ModelManager], [WorkerTaskExecutor, TaskExecutor], [WorkerTaskHandle, TaskHandle], [WorkerLanguageModel, LanguageModel], [WorkerMemoryManager, MemoryManager]]) {
    Object.setPrototypeOf(proxy.prototype, real.prototype);
  }
  return new Proxy(TaskExecutor, {
    construct(target, args, newTarget) {
      if (args[0] instanceof WorkerModelManager) return new WorkerTaskExecutor(args[0]);
      return Reflect.construct(target, args, newTarget);
    },
  });
}
