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
// hearth.js links this module to its classes at load (`linkWorkerMode`): this file imports
// nothing, so bundlers see one entry, and `new URL('./hearth-worker.js', import.meta.url)` below
// is the pattern Vite and webpack turn into a worker chunk.

const START_TIMEOUT_MS = 30_000;
/** How a `WorkerTaskExecutor` reaches its manager's connection. */
const EXECUTOR = Symbol('executor');
const CLOSE = Symbol('close');

/** The package's classes and helpers, from hearth.js. */
let api = null;

function error(className, code, message, fields = {}) {
  return api.errors.makeError(className, code, message, fields);
}

function workerFailed(message, fields = {}) {
  return error('HearthError', 'WORKER_FAILED', message, { field: 'worker', ...fields });
}

/** A worker's error (`{ name, message, fields }`) as the page's class of that name. */
function rebuild(data) {
  const Class = api.errors[data.name];
  const fields = data.fields || {};
  if (typeof Class === 'function' && (Class === api.errors.HearthError || Class.prototype instanceof api.errors.HearthError)) {
    return api.errors.makeError(data.name, fields.code ?? 'HEARTH_ERROR', data.message, fields);
  }
  const e = new Error(data.message);
  e.name = data.name;
  return Object.assign(e, fields);
}

/** Data that can cross to the worker, or an `InvalidInputError` naming what cannot. */
function crossable(value, what) {
  try {
    return structuredClone(value);
  } catch (e) {
    throw error('InvalidInputError', 'INVALID_OPTIONS', `${what} cannot be sent to the worker: ${e.message}`, { field: what });
  }
}

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
    return structuredClone(this.#state.catalog);
  }

  canLoadModel(key) {
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

/** `manager.memoryManager` in worker mode: the worker's account, mirrored on the page. */
class WorkerMemoryManager {
  #conn;
  #mirror;
  #synced = -1;

  constructor(conn, mirror) {
    this.#conn = conn;
    this.#mirror = mirror;
  }

  /**
   * Brings the mirror to the worker's account (its real budget and limits, its resident models),
   * unless page calls are still on their way there. The simulations need no syncing: only the
   * page's calls set them, and each is applied to the mirror as it is made.
   */
  #sync() {
    const conn = this.#conn;
    if (this.#synced === conn.version || !conn.caughtUp || !conn.state) return this.#mirror;
    const { stats, budget, limits } = conn.state;
    const m = this.#mirror;
    m.setSimulatedLimits(limits ?? null);
    m.setBudgetBytes(budget.bytes);
    for (const e of m.getStats().loaded) m.registerUnloaded(e.key);
    for (const e of stats.loaded) {
      m.registerLoaded(e.key, e.bytes);
      if (e.pinned) m.pin(e.key);
    }
    this.#synced = conn.version;
    return m;
  }

  /** A setter: checked and applied on the mirror at once, then in the worker in call order. */
  #set(method, args) {
    const answer = this.#sync()[method](...args);
    this.#conn.fire('memory', method, crossable(args, method));
    return answer;
  }

  get #state() { return this.#conn.state; }
  get adapter() { return structuredClone(this.#state.adapter); }
  get backend() { return this.#state.backend; }
  get limits() { return structuredClone(this.#state.limits); }
  get budget() { return structuredClone(this.#state.budget); }

  requirementFor(file, options) { return this.#sync().requirementFor(file, options); }
  canLoadModel(key, requirement) { return this.#sync().canLoadModel(key, requirement); }
  registerLoaded(key, bytes) { return this.#set('registerLoaded', [key, bytes]); }
  registerUnloaded(key) { return this.#set('registerUnloaded', [key]); }
  touch(key) { return this.#set('touch', [key]); }
  pin(key) { return this.#set('pin', [key]); }
  unpin(key) { return this.#set('unpin', [key]); }
  setBudgetBytes(bytes) { return this.#set('setBudgetBytes', [bytes]); }
  setSimulationLowVRAM(on) { return this.#set('setSimulationLowVRAM', [on]); }
  setSimulatedBudget(bytes) { return this.#set('setSimulatedBudget', [bytes]); }
  setSimulatedLimits(limits) { return this.#set('setSimulatedLimits', [limits]); }
  getStats() { return structuredClone(this.#state.stats); }
  refresh() { return this.#conn.call('memory', 'refresh', []); }

  emitMetrics(key) {
    this.#conn.fire('memory', 'emitMetrics', [key ?? undefined]);
    return this.getStats();
  }

  [CLOSE]() {
    this.#mirror.free();
  }

  free() {}

  [Symbol.dispose]() {}
}

/** `manager.getModel(key)` in worker mode: the resident model `key` in the worker. */
class WorkerLanguageModel {
  #conn;
  #key;
  #info;
  #disposed = false;

  constructor(conn, key) {
    this.#conn = conn;
    this.#key = key;
    this.#info = conn.state.infos[key];
  }

  get info() {
    return structuredClone(this.#conn.state.infos[this.#key] ?? this.#info);
  }

  get disposed() {
    return this.#disposed || !Object.hasOwn(this.#conn.state.infos, this.#key);
  }

  generate(input, options) {
    const { onToken, signal, ...rest } = options && typeof options === 'object' ? options : {};
    const data = options && typeof options === 'object' ? rest : options;
    let args;
    try {
      args = [crossable(input, 'input'), crossable(data, 'options'), signal ? Boolean(signal.aborted) : undefined, typeof onToken === 'function'];
    } catch (e) {
      return Promise.reject(e);
    }
    const conn = this.#conn;
    const sink = typeof onToken === 'function'
      ? (id) => {
        let stopped = false;
        return (token) => {
          if (stopped) return;
          let keepGoing;
          try {
            keepGoing = onToken(token);
          } catch {
            // As on the main thread: a callback that throws does not stop the generation.
          }
          if (keepGoing === false) {
            stopped = true;
            conn.post({ type: 'stop', id });
          }
        };
      }
      : undefined;
    return conn.call('model', 'generate', args, { key: this.#key }, signal, sink);
  }

  stream(input, options) {
    return api.errors.streamGenerate(this, input, options);
  }

  dispose() {
    this.#disposed = true;
    if (!this.#conn.closed) this.#conn.fire('model', 'dispose', [], { key: this.#key });
  }

  free() {}

  [Symbol.dispose]() {}
}

/** `new TaskExecutor(manager)` for a worker-mode manager. */
class WorkerTaskExecutor {
  #conn;
  #id;
  #shadow;
  #state;
  #nextTask = 0;
  /** Page task id -> { modelKey, priority, seq, handle }, until the task settles. */
  #tasks = new Map();

  constructor(manager) {
    const { conn, id, shadow, state } = manager[EXECUTOR]();
    this.#conn = conn;
    this.#id = id;
    this.#shadow = shadow;
    this.#state = state;
    conn.fire('executor', 'create', [], { exec: id });
  }

  enqueue(task) {
    // The same checks (and typed errors) as the worker's, at once, on the shadow: queued there
    // and cancelled before it could start.
    const copy = task && typeof task === 'object' ? { ...task, signal: undefined } : task;
    const state = this.#state();
    if (copy && typeof copy === 'object' && copy.modelKey == null && state.current !== undefined) copy.modelKey = state.current;
    const probe = this.#shadow.enqueue(copy);
    const modelKey = probe.modelKey;
    probe.result.catch(() => undefined);
    this.#shadow.cancel(probe.id);
    probe.free();

    const { signal, params } = task;
    const onToken = params && typeof params.onToken === 'function' ? params.onToken : undefined;
    const sent = { ...copy, modelKey, signal: undefined };
    if (params && typeof params === 'object') {
      const { onToken: _dropped, ...rest } = params;
      sent.params = rest;
    }
    const data = crossable(sent, 'task');
    this.#nextTask += 1;
    const id = this.#nextTask;
    const handle = new WorkerTaskHandle(this, id, modelKey);
    const conn = this.#conn;
    const entry = { modelKey, priority: Number.isFinite(task.priority) ? task.priority : 0, handle, seq: 0, cancelled: false };
    this.#tasks.set(id, entry);
    const key = `${this.#id}:${id}`;
    let stopped = false;
    conn.tasks.set(key, (item) => {
      if (!item.done) {
        handle._token(item.token);
        if (onToken && !stopped) {
          let keepGoing;
          try {
            keepGoing = onToken(item.token);
          } catch {
            // As on the main thread: a callback that throws does not stop the task.
          }
          if (keepGoing === false) {
            stopped = true;
            conn.post({ type: 'stop', id: key });
          }
        }
        return;
      }
      conn.tasks.delete(key);
      this.#tasks.delete(id);
      handle._settle(item.ok, item.ok ? item.value : (item.error instanceof Error ? item.error : rebuild(item.error)));
    });
    entry.seq = conn.seq + 1;
    conn.fire('executor', 'enqueue', [data, id, Boolean(signal && signal.aborted), Boolean(onToken)], { exec: this.#id });
    if (signal && !signal.aborted) signal.addEventListener('abort', () => this.cancel(id), { once: true });
    return handle;
  }

  cancel(id) {
    const entry = this.#tasks.get(id);
    if (!entry || entry.cancelled || this.#conn.closed) return false;
    entry.cancelled = true;
    entry.seq = this.#conn.seq + 1;
    this.#conn.fire('executor', 'cancel', [id], { exec: this.#id });
    return true;
  }

  /** The worker's queue, with the page's calls it has not seen yet applied. */
  pending() {
    const conn = this.#conn;
    const mine = conn.state.executors[this.#id];
    let list = (mine ? mine.pending : []).filter((p) => !this.#tasks.get(p.id)?.cancelled);
    if (!conn.caughtUp) {
      for (const [id, e] of this.#tasks) {
        if (e.seq > conn.ack && !e.cancelled && !list.some((p) => p.id === id) && mine?.running !== id) {
          list.push({ id, modelKey: e.modelKey, priority: e.priority });
        }
      }
      list.sort((a, b) => b.priority - a.priority || a.id - b.id);
    }
    return structuredClone(list);
  }

  get running() {
    return this.#conn.state.executors[this.#id]?.running;
  }

  free() {}

  [Symbol.dispose]() {}
}

/** A task's handle in worker mode: its tokens arrive from the worker, in order. */
class WorkerTaskHandle {
  #executor;
  #queue = [];
  #wake = null;
  #finished = false;
  #failure = null;
  #settle;
  #id;
  #modelKey;
  #result;

  constructor(executor, id, modelKey) {
    this.#executor = executor;
    this.#id = id;
    this.#modelKey = modelKey;
    let settle;
    this.#result = new Promise((resolve, reject) => {
      settle = (ok, value) => (ok ? resolve(value) : reject(value));
    });
    this.#result.catch(() => undefined);
    this.#settle = settle;
  }

  get id() { return this.#id; }
  get modelKey() { return this.#modelKey; }
  get result() { return this.#result; }

  _token(token) {
    this.#queue.push(token);
    this.#notify();
  }

  _settle(ok, value) {
    this.#finished = true;
    if (!ok) this.#failure = value;
    this.#settle(ok, value);
    this.#notify();
  }

  #notify() {
    const w = this.#wake;
    this.#wake = null;
    if (w) w();
  }

  cancel() {
    return this.#executor.cancel(this.id);
  }

  async next() {
    for (;;) {
      if (this.#queue.length) return { value: this.#queue.shift(), done: false };
      if (this.#finished) {
        if (this.#failure) throw this.#failure;
        return { done: true };
      }
      await new Promise((r) => { this.#wake = r; });
    }
  }

  return() {
    this.#executor.cancel(this.id);
    return Promise.resolve({ done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  free() {}

  [Symbol.dispose]() {}
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
  api = linked;
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
