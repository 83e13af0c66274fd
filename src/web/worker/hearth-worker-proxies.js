// Worker mode, the page's proxies for the worker's objects (see hearth-worker-client.js): the
// memory manager (a mirror of the worker's account on the page's shadow, for synchronous answers),
// the models of `getModel(key)`, the task executors and their task handles; and what they and
// the client share (the linked classes, the error helpers).

/** How a `WorkerTaskExecutor` reaches its manager's connection. */
export const EXECUTOR = Symbol('executor');
export const CLOSE = Symbol('close');

/** The package's classes and helpers, from hearth.js (`linkWorkerMode`). */
export const api = {};

export function error(className, code, message, fields = {}) {
  return api.errors.makeError(className, code, message, fields);
}

export function workerFailed(message, fields = {}) {
  return error('WorkerError', 'WORKER_FAILED', message, { field: 'worker', ...fields });
}

/** A worker's error (`{ name, message, fields }`) as the page's class of that name. */
export function rebuild(data) {
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
export function crossable(value, what) {
  try {
    return structuredClone(value);
  } catch (e) {
    throw error('InvalidInputError', 'INVALID_OPTIONS', `${what} cannot be sent to the worker: ${e.message}`, { field: what });
  }
}

/** `manager.memoryManager` in worker mode: the worker's account, mirrored on the page. */
export class WorkerMemoryManager {
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
export class WorkerLanguageModel {
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
export class WorkerTaskExecutor {
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
export class WorkerTaskHandle {
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
