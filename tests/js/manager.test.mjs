// ModelManager and TaskExecutor in the browser, on Chromium's WebGPU (SwiftShader) adapter, with
// real GGUF files fetched from the test server: SmolLM2 135M for the init sequence of the ModelManager v3.1 design, and the
// tiny random-weight fixtures of tools/make_fixtures.py (real GGUF files, real tokenizers, hidden
// size 64) where a test loads several models, so that switching, eviction, queues and
// cancellation are exercised on the real loader and device in seconds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';
import { catalog } from './catalog.mjs';

const CATALOG = catalog('smollm2-135m', 'gemma-3-270m', 'fx-llama', 'fx-qwen', 'fx-gemma');

let h;
before(async () => {
  h = await openHarness();
  // Every test builds its manager with this: a streamer recording every event.
  await h.page.evaluate((catalog) => {
    window.setup = async (options = {}) => {
      const { ModelManager, SseStreamer } = window.hearth;
      const streamer = new SseStreamer({ bufferSize: 8192 });
      const events = [];
      streamer.subscribe((e) => events.push({ type: e.type, data: e.data, key: e.modelKey }));
      const manager = await ModelManager.create({ streamer, backend: 'webgpu', catalog, ...options });
      return { manager, events, streamer };
    };
    window.infos = (events, key) => events.filter((e) => e.type === 'info' && (!key || e.key === key)).map((e) => e.data);
    window.plain = (e) => ({ name: e.name, code: e.code, message: e.message, ...Object.fromEntries(Object.entries(e)) });
  }, CATALOG);
});
after(async () => {
  assert.deepEqual(h?.pageErrors.map(String) ?? [], []);
  await h?.close();
});

test('init: the ModelManager v3.1 sequence for gemma-3-270m\'s place (SmolLM2 on WebGPU); switching to the loaded model only touches it', async () => {
  const out = await h.page.evaluate(async () => {
    const { manager, events } = await window.setup();
    const created = events.length;
    const info = await manager.init('smollm2-135m');
    const init = events.slice(created);
    const mark = events.length;
    const again = await manager.switchModel('smollm2-135m');
    return {
      info, init, again: events.slice(mark), againInfo: again,
      current: manager.currentModel, ready: manager.isReady, loaded: manager.loadedModels(),
      stats: manager.memoryManager.getStats(), backend: manager.backend,
    };
  });
  const key = 'smollm2-135m';
  assert.equal(out.backend, 'webgpu');
  assert.deepEqual(out.init.filter((e) => e.type === 'info').map((e) => e.data), [
    `Checking memory for ${key}...`,
    `Loading model ${key}...`,
    `Model ${key} loaded successfully.`,
    `Model ${key} initialized and ready.`,
  ]);
  assert.ok(out.init.every((e) => e.key === key), 'every event names the model');
  const at = (text) => out.init.findIndex((e) => e.type === 'info' && e.data === text);
  const loading = at(`Loading model ${key}...`);
  const success = at(`Model ${key} loaded successfully.`);
  // Upload progress between them, 0 -> 100%, at least every 1%.
  const upload = out.init.filter((e, i) => i > loading && i < success && e.type === 'progress' && e.data.phase === 'upload');
  assert.equal(upload[0].data.loaded, 0);
  assert.equal(upload.at(-1).data.percent, 100);
  let gap = 0;
  for (let i = 1; i < upload.length; i++) {
    assert.ok(upload[i].data.loaded >= upload[i - 1].data.loaded, 'progress never goes back');
    gap = Math.max(gap, upload[i].data.percent - upload[i - 1].data.percent);
  }
  console.log(`upload progress: ${upload.length} events, largest step ${gap.toFixed(2)}%`);
  assert.ok(gap <= 1.0, `largest progress step ${gap}%`);
  // Metrics while loading (measured resident bytes growing), a ready step, then the register.
  const metrics = out.init.filter((e, i) => i > loading && i < success && e.type === 'metrics');
  assert.ok(metrics.length >= 20, `${metrics.length} metrics events`);
  assert.ok(metrics.at(-1).data.usedBytes > 0.9 * 193366032, JSON.stringify(metrics.at(-1).data));
  assert.ok(out.init.some((e, i) => i < success && e.type === 'progress' && e.data.phase === 'ready'));
  const registered = metrics.at(-1);
  assert.equal(registered.data.loadedModels, 1, 'the register metrics come before the success message');
  // The loaded model, accounted: within 2% of the catalog's exact figure.
  assert.equal(out.info.key, key);
  assert.equal(out.current, key);
  assert.equal(out.ready, true);
  assert.equal(out.loaded.length, 1);
  assert.ok(Math.abs(out.loaded[0].bytes / 193366032 - 1) < 0.02, JSON.stringify(out.loaded));
  assert.equal(out.loaded[0].current, true);
  assert.match(out.loaded[0].backend, /^webgpu/);
  assert.equal(out.stats.loaded[0].key, key);
  // The loaded model again: one info, nothing loaded.
  assert.deepEqual(out.again.map((e) => [e.type, e.data]), [['info', `Model ${key} is already loaded.`]]);
  assert.equal(out.againInfo.key, key);
});

test('low VRAM: the "Not enough VRAM" error with figures and suggestions; autoFallback loads the best one and says so', async () => {
  const out = await h.page.evaluate(async () => {
    const { ModelLoadError } = window.hearth;
    const { manager, events } = await window.setup();
    manager.memoryManager.setSimulationLowVRAM(true);
    const mark = events.length;
    const error = await manager.switchModel('gemma-3-270m').then(() => null, (e) => e);
    const refused = events.slice(mark);
    const canLoad = manager.canLoadModel('gemma-3-270m');

    const fb = await window.setup({ autoFallback: true });
    fb.manager.memoryManager.setSimulationLowVRAM(true);
    const m2 = fb.events.length;
    const info = await fb.manager.switchModel('gemma-3-270m');
    return {
      isModelLoadError: error instanceof ModelLoadError, error: window.plain(error), refused, canLoad,
      current: manager.currentModel, loaded: manager.loadedModels(),
      fallback: { info, events: fb.events.slice(m2).filter((e) => e.type === 'info' || e.type === 'error'), current: fb.manager.currentModel },
    };
  });
  const e = out.error;
  assert.ok(out.isModelLoadError, JSON.stringify(e));
  assert.equal(e.name, 'ModelLoadError');
  assert.equal(e.code, 'NOT_ENOUGH_MEMORY');
  // Exact, from the header read in "Checking memory": the same as the catalog's figure.
  assert.equal(e.requiredBytes, 326288656);
  assert.equal(e.availableBytes, 256 * 2 ** 20);
  assert.equal(e.reason, 'Not enough VRAM (available: 256 MB, required: 311 MB)');
  assert.ok(e.message.startsWith(`Cannot load gemma-3-270m: ${e.reason}`), e.message);
  // Suggestions: catalog models that fit in 256 MB, largest first: SmolLM2, then the fixtures.
  assert.equal(e.suggestions[0].key, 'smollm2-135m', JSON.stringify(e.suggestions));
  assert.equal(e.suggestions[0].requiredBytes, 193366032);
  assert.deepEqual(e.suggestions.map((s) => s.key).slice(1).sort(), ['fx-gemma', 'fx-llama', 'fx-qwen']);
  for (const s of e.suggestions) assert.ok(s.requiredBytes <= 256 * 2 ** 20, JSON.stringify(s));
  for (let i = 1; i < e.suggestions.length; i++) assert.ok(e.suggestions[i - 1].requiredBytes >= e.suggestions[i].requiredBytes);
  // The event sequence: checking, then the error with the same message.
  assert.deepEqual(out.refused.filter((x) => x.type !== 'progress').map((x) => [x.type, x.type === 'error' ? x.data.message : x.data]), [
    ['info', 'Checking memory for gemma-3-270m...'],
    ['error', e.message],
  ]);
  assert.equal(out.refused.find((x) => x.type === 'error').data.name, 'ModelLoadError');
  assert.equal(out.current, undefined);
  assert.deepEqual(out.loaded, []);
  assert.equal(out.canLoad.can, false);
  assert.equal(out.canLoad.exact, true);
  assert.deepEqual(out.canLoad.suggestions.map((s) => s.key), e.suggestions.map((s) => s.key));
  // autoFallback: the error, then the best suggestion loaded instead.
  const best = e.suggestions[0].key;
  assert.equal(out.fallback.info.key, best);
  assert.equal(out.fallback.current, best);
  const texts = out.fallback.events.map((x) => (x.type === 'error' ? `error: ${x.data.message}` : x.data));
  assert.match(texts[1], new RegExp(`^error: Cannot load gemma-3-270m: Not enough VRAM .* Loading ${best} instead\\.$`));
  assert.match(texts[2], new RegExp(`^Falling back to ${best} `));
  assert.deepEqual(texts.slice(3), [`Checking memory for ${best}...`, `Loading model ${best}...`, `Model ${best} loaded successfully.`]);
});

test('eviction: a model that does not fit unloads the least recently used one, and only that', async () => {
  const out = await h.page.evaluate(async () => {
    const { manager, events } = await window.setup();
    const need = {};
    for (const k of ['fx-llama', 'fx-qwen', 'fx-gemma']) need[k] = (await manager.checkModel(k)).requiredBytes;
    const margin = 2 ** 20;
    const budget = need['fx-llama'] + Math.max(need['fx-qwen'], need['fx-gemma']) + margin;
    manager.memoryManager.setSimulatedBudget(budget);
    const start = events.length;
    await manager.switchModel('fx-llama');
    const qwenFit = manager.canLoadModel('fx-qwen');
    await manager.switchModel('fx-qwen');
    await manager.switchModel('fx-llama'); // touched: fx-qwen is now the least recently used
    const before = window.infos(events.slice(start));
    const resident = Object.fromEntries(manager.loadedModels().map((m) => [m.key, m.bytes]));
    const mark = events.length;
    await manager.switchModel('fx-gemma');
    return { need, budget, before, resident, qwenFit: { ...qwenFit, evictable: undefined }, events: window.infos(events.slice(mark)), loaded: manager.loadedModels().map((m) => m.key), current: manager.currentModel };
  });
  assert.ok(out.need['fx-gemma'] > out.need['fx-qwen'] + 2 ** 20, JSON.stringify(out.need));
  // Both fit side by side: nothing was unloaded before fx-gemma.
  assert.ok(!out.before.some((m) => m.startsWith('Unloading')), JSON.stringify({ before: out.before, resident: out.resident, need: out.need, qwenFit: out.qwenFit }));
  assert.deepEqual(out.events, [
    'Checking memory for fx-gemma...',
    'Unloading fx-qwen to make room for fx-gemma.',
    'Model fx-qwen unloaded.',
    'Loading model fx-gemma...',
    'Model fx-gemma loaded successfully.',
  ]);
  assert.deepEqual(out.loaded.sort(), ['fx-gemma', 'fx-llama']);
  assert.equal(out.current, 'fx-gemma');
});

test('concurrent switches: one load per key, call order across keys, a failure leaves the state consistent', async () => {
  const out = await h.page.evaluate(async () => {
    const { DownloadError } = window.hearth;
    const { manager, events } = await window.setup();
    manager.registerModel({ key: 'fx-missing', url: '/fixtures/no-such-model.gguf', arch: 'llama', quant: 'Q4_0', fileBytes: 1000, contextLength: 128 });
    const calls = [
      manager.switchModel('fx-llama'),
      manager.switchModel('fx-llama'),
      manager.switchModel('fx-missing'),
      manager.switchModel('fx-qwen'),
    ];
    const settled = await Promise.allSettled(calls);
    const error = settled[2].reason;
    return {
      status: settled.map((s) => s.status),
      keys: settled.map((s) => s.value?.key),
      error: window.plain(error), isDownloadError: error instanceof DownloadError,
      infos: window.infos(events),
      errors: events.filter((e) => e.type === 'error').map((e) => [e.key, e.data.name, e.data.message]),
      loaded: manager.loadedModels().map((m) => m.key),
      current: manager.currentModel,
      registered: manager.memoryManager.getStats().registeredBytes,
      sum: manager.loadedModels().reduce((a, m) => a + m.bytes, 0),
    };
  });
  assert.deepEqual(out.status, ['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  assert.deepEqual(out.keys, ['fx-llama', 'fx-llama', undefined, 'fx-qwen']);
  assert.equal(out.infos.filter((m) => m === 'Loading model fx-llama...').length, 1, 'one load for two calls');
  const order = ['Model fx-llama loaded successfully.', 'Checking memory for fx-missing...', 'Checking memory for fx-qwen...', 'Model fx-qwen loaded successfully.'];
  const idx = order.map((m) => out.infos.indexOf(m));
  assert.ok(idx.every((i, n) => i >= 0 && (n === 0 || i > idx[n - 1])), JSON.stringify(out.infos));
  assert.ok(out.isDownloadError, JSON.stringify(out.error));
  assert.equal(out.error.modelKey, 'fx-missing');
  assert.ok(Array.isArray(out.error.suggestions));
  assert.deepEqual(out.errors.map((e) => e.slice(0, 2)), [['fx-missing', 'DownloadError']]);
  assert.match(out.errors[0][2], /^Failed to load fx-missing: .*404/);
  assert.deepEqual(out.loaded.sort(), ['fx-llama', 'fx-qwen']);
  assert.equal(out.current, 'fx-qwen');
  assert.equal(out.registered, out.sum);
});

test('cancellation mid-download and mid-upload: the previous model stays current and memory comes back', async () => {
  const out = await h.page.evaluate(async () => {
    const { CancelledError } = window.hearth;
    const { manager, events } = await window.setup();
    manager.registerModel({ key: 'fx-slow', url: '/__test/slow/fixtures/llama-q4_1.gguf', arch: 'llama', quant: 'Q4_1', fileBytes: 5750112, contextLength: 128 });
    manager.registerModel({ key: 'fx-slowrange', url: '/__test/slowrange/fixtures/llama-q4_1.gguf', arch: 'llama', quant: 'Q4_1', fileBytes: 5750112, contextLength: 128 });
    await manager.switchModel('fx-llama');
    const baseline = await manager.memoryManager.refresh();
    const abortWhen = (key, phase, percent) => {
      const ac = new AbortController();
      manager.sseStreamer.subscribe((e) => {
        if (e.modelKey === key && e.type === 'progress' && e.data.phase === phase && e.data.percent >= percent) ac.abort();
      });
      return ac.signal;
    };
    const r = {};
    for (const [key, phase, percent] of [['fx-slow', 'download', 10], ['fx-slowrange', 'upload', 60]]) {
      const mark = events.length;
      const error = await manager.switchModel(key, { signal: abortWhen(key, phase, percent) }).then(() => null, (e) => e);
      const after = await manager.memoryManager.refresh();
      const mine = events.slice(mark);
      r[key] = {
        cancelled: error instanceof CancelledError, error: window.plain(error),
        maxUploadPercent: Math.max(0, ...mine.filter((e) => e.type === 'progress' && e.data.phase === 'upload').map((e) => e.data.percent)),
        maxUsed: Math.max(...mine.filter((e) => e.type === 'metrics').map((e) => e.data.usedBytes)),
        errorEvents: mine.filter((e) => e.type === 'error').map((e) => [e.data.name, e.data.message]),
        current: manager.currentModel, loaded: manager.loadedModels().map((m) => m.key),
        usedBefore: baseline.usedBytes, usedAfter: after.usedBytes,
      };
    }
    return r;
  });
  for (const [key, r] of Object.entries(out)) {
    assert.ok(r.cancelled, `${key}: ${JSON.stringify(r.error)}`);
    assert.equal(r.error.message, `Loading ${key} was cancelled while loading; fx-llama is still the current model.`);
    assert.deepEqual(r.errorEvents, [['CancelledError', r.error.message]]);
    assert.equal(r.current, 'fx-llama');
    assert.deepEqual(r.loaded, ['fx-llama']);
    // Memory back to the baseline (measured by the allocator for the whole device): no more than
    // before, within 2% (less when the garbage collector freed an earlier test's models meanwhile).
    assert.ok(r.usedAfter <= r.usedBefore * 1.02, `${key}: ${r.usedBefore} -> ${r.usedAfter}`);
  }
  assert.equal(out['fx-slow'].maxUploadPercent, 0, 'aborted during the download, before the upload');
  const up = out['fx-slowrange'];
  // At 60% the token embedding (the first half of the upload) is on the device.
  assert.ok(up.maxUploadPercent >= 60 && up.maxUploadPercent < 100, `aborted mid-upload at ${up.maxUploadPercent}%`);
  assert.ok(up.maxUsed > 1.5e6, `bytes were resident before the abort: ${up.maxUsed}`);
});

test('TaskExecutor: priorities across two models, "Loading model" before tokens, a failing task does not stall the queue', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, InvalidInputError } = window.hearth;
    const { manager, events } = await window.setup();
    const ex = new TaskExecutor(manager);
    const params = { maxTokens: 4, ignoreEos: true };
    const t1 = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params });
    const t2 = ex.enqueue({ modelKey: 'fx-qwen', prompt: 'Hello', params });
    const t3 = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hi there', params, priority: 5 });
    const bad = ex.enqueue({ modelKey: 'fx-qwen', prompt: 'x', params: { temperature: -1 }, priority: 1 });
    const pending = ex.pending();
    const streamed = [];
    for await (const t of t1) streamed.push(t.text);
    const settled = await Promise.allSettled([t1.result, t2.result, t3.result, bad.result]);
    // The order things happened in, from the status stream.
    const timeline = events
      .filter((e) => e.type === 'done' || (e.type === 'info' && /^(Loading model|Model .* is already loaded)/.test(e.data)) || e.type === 'error' || e.type === 'token')
      .map((e) => `${e.type}:${e.key}${e.type === 'info' ? `:${e.data}` : ''}`)
      .filter((x, i, a) => !(x.startsWith('token:') && a[i - 1] === x));
    return {
      ids: [t1.id, t2.id, t3.id, bad.id], pending, streamed,
      status: settled.map((s) => s.status), results: settled.map((s) => s.value),
      badError: window.plain(settled[3].reason), badIsInvalid: settled[3].reason instanceof InvalidInputError,
      timeline, after: ex.pending(), running: ex.running,
    };
  });
  const [i1, i2, i3, ib] = out.ids;
  assert.deepEqual(out.pending.map((p) => p.id), [i3, ib, i1, i2], 'priority, then first in first out');
  assert.deepEqual(out.pending.map((p) => p.priority), [5, 1, 0, 0]);
  assert.deepEqual(out.status, ['fulfilled', 'fulfilled', 'fulfilled', 'rejected']);
  assert.ok(out.badIsInvalid, JSON.stringify(out.badError));
  assert.equal(out.badError.code, 'INVALID_PARAMS');
  for (const [n, r] of [[0, out.results[0]], [1, out.results[1]], [2, out.results[2]]]) {
    assert.equal(r.generatedTokens, 4, JSON.stringify(r));
    assert.equal(r.taskId, out.ids[n]);
    assert.ok(r.ttftMs > 0 && r.decodeTokensPerSecond > 0);
  }
  assert.equal(out.results[0].modelKey, 'fx-llama');
  assert.equal(out.results[1].modelKey, 'fx-qwen');
  // The iterator saw every token of t1, in order.
  assert.equal(out.streamed.length, 4);
  assert.equal(out.streamed.join(''), out.results[0].text);
  assert.deepEqual(out.timeline, [
    'info:fx-llama:Loading model fx-llama...', 'token:fx-llama', 'done:fx-llama',      // t3 (priority 5)
    'info:fx-qwen:Loading model fx-qwen...', 'error:fx-qwen',                            // bad (priority 1) fails
    'info:fx-llama:Model fx-llama is already loaded.', 'token:fx-llama', 'done:fx-llama', // t1
    'info:fx-qwen:Model fx-qwen is already loaded.', 'token:fx-qwen', 'done:fx-qwen',     // t2
  ]);
  assert.deepEqual(out.after, []);
  assert.equal(out.running, undefined);
});

test('TaskExecutor: cancel a running task between tokens, a waiting one before it starts; preload yields to the running task', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, CancelledError } = window.hearth;
    const { manager, events } = await window.setup();
    await manager.switchModel('fx-llama');
    const ex = new TaskExecutor(manager);
    const long = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params: { maxTokens: 100, ignoreEos: true } });
    const waiting = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hi', params: { maxTokens: 3 } });
    const next = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hey', params: { maxTokens: 3, ignoreEos: true } });
    const cancelledWaiting = ex.cancel(waiting.id);
    const preload = manager.preload('fx-qwen');
    let n = 0;
    for await (const _ of long) { if (++n === 3) break; } // leaving the loop cancels the task
    const settled = await Promise.allSettled([long.result, waiting.result, next.result, preload]);
    const mark = events.findIndex((e) => e.type === 'info' && e.data === 'Loading model fx-qwen...');
    const doneBefore = events.slice(0, mark).filter((e) => e.type === 'done').length;
    return {
      cancelledWaiting, n,
      status: settled.map((s) => s.status),
      longError: window.plain(settled[0].reason), longIsCancelled: settled[0].reason instanceof CancelledError,
      waitingError: window.plain(settled[1].reason),
      next: settled[2].value, doneBefore,
      current: manager.currentModel, qwenLoaded: manager.isModelLoaded('fx-qwen'),
      cancelledInfo: window.infos(events).find((m) => m.startsWith(`Task ${waiting.id}`)),
    };
  });
  assert.equal(out.cancelledWaiting, true);
  assert.deepEqual(out.status, ['rejected', 'rejected', 'fulfilled', 'fulfilled']);
  assert.ok(out.longIsCancelled, JSON.stringify(out.longError));
  assert.ok(out.longError.text.length > 0, 'the cancelled task keeps the text it made');
  assert.equal(out.waitingError.name, 'CancelledError');
  assert.match(out.waitingError.message, /was cancelled before it started/);
  assert.match(out.cancelledInfo, /cancelled before it started/);
  assert.equal(out.next.generatedTokens, 3);
  // The preload waited for the running tasks: both finished (done events) before it loaded.
  assert.ok(out.doneBefore >= 2, `done events before the preload's load: ${out.doneBefore}`);
  assert.equal(out.current, 'fx-llama', 'a preload does not change the current model');
  assert.equal(out.qwenLoaded, true);
});

test('bad input: unknown keys, bad catalog entries and bad tasks are typed errors that change nothing', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, ModelManager } = window.hearth;
    const { manager } = await window.setup();
    const errors = {};
    const grab = async (name, f) => { try { await f(); errors[name] = null; } catch (e) { errors[name] = window.plain(e); } };
    await grab('unknownKey', () => manager.switchModel('no-such-model'));
    await grab('badEntry', () => manager.registerModel({ key: 'x y', url: '/a.gguf', arch: 'llama', quant: 'Q4_0', fileBytes: 1, contextLength: 1 }));
    await grab('noUrl', () => manager.registerModel({ key: 'x', arch: 'llama', quant: 'Q4_0', fileBytes: 1, contextLength: 1 }));
    await grab('badCatalog', () => ModelManager.create({ catalog: [{ key: 'a' }] }));
    await grab('badStreamer', () => ModelManager.create({ streamer: {} }));
    const ex = new TaskExecutor(manager);
    await grab('noModel', () => ex.enqueue({ prompt: 'x' }));
    await grab('noPrompt', () => ex.enqueue({ modelKey: 'fx-llama' }));
    await grab('unknownTaskKey', () => ex.enqueue({ modelKey: 'nope', prompt: 'x' }));
    await grab('wrongArch', async () => {
      manager.registerModel({ key: 'fx-liar', url: '/fixtures/llama-q4_0.gguf', arch: 'gemma3', quant: 'Q4_0', fileBytes: 5352288, contextLength: 128 });
      await manager.switchModel('fx-liar');
    });
    return { errors, keys: manager.catalog().map((r) => r.key), loaded: manager.loadedModels(), pending: ex.pending() };
  });
  const e = out.errors;
  assert.equal(e.unknownKey.name, 'InvalidInputError');
  assert.equal(e.unknownKey.code, 'UNKNOWN_MODEL');
  assert.match(e.unknownKey.message, /No model "no-such-model" in the catalog; known: gemma-3-270m, smollm2-135m, .*fx-llama/);
  assert.equal(e.badEntry.code, 'INVALID_CATALOG_ENTRY');
  assert.match(e.badEntry.message, /`key` must be/);
  assert.match(e.noUrl.message, /`url` is empty/);
  assert.equal(e.badCatalog.code, 'INVALID_CATALOG');
  assert.match(e.badCatalog.message, /missing field/);
  assert.equal(e.badStreamer.code, 'INVALID_OPTIONS');
  assert.equal(e.noModel.code, 'NO_MODEL');
  assert.equal(e.noPrompt.code, 'INVALID_PROMPT');
  assert.equal(e.unknownTaskKey.code, 'UNKNOWN_MODEL');
  assert.equal(e.wrongArch.name, 'ModelFormatError');
  assert.match(e.wrongArch.message, /fx-liar is a llama model, but the catalog says gemma3/);
  assert.ok(!out.keys.includes('x y') && !out.keys.includes('x'));
  assert.deepEqual(out.loaded, []);
  assert.deepEqual(out.pending, []);
});

test('registerModel with a user-supplied File: loads from the Blob, fileBytes from its size', async () => {
  const out = await h.page.evaluate(async () => {
    const { manager, events } = await window.setup();
    const bytes = await fetch('/fixtures/gemma3-q4_0.gguf').then((r) => r.arrayBuffer());
    const file = new File([bytes], 'my-model.gguf');
    manager.registerModel({ key: 'my-file', file, arch: 'gemma3', quant: 'Q4_0', contextLength: 128, description: 'picked by the user' });
    const row = manager.catalog().find((r) => r.key === 'my-file');
    const info = await manager.switchModel('my-file');
    return { row, info, infos: window.infos(events, 'my-file'), size: bytes.byteLength };
  });
  assert.equal(out.row.fileBytes, out.size);
  assert.equal(out.row.url, '');
  assert.equal(out.info.key, 'my-file');
  assert.equal(out.info.architecture, 'gemma3');
  assert.deepEqual(out.infos, ['Checking memory for my-file...', 'Loading model my-file...', 'Model my-file loaded successfully.']);
});

test('model cache: the first load downloads into the browser cache (OPFS), the next reads it without the network', async () => {
  const out = await h.page.evaluate(async () => {
    const entry = { key: 'fx-cached', url: '/fixtures/qwen2-q4_0.gguf', arch: 'qwen2', quant: 'Q4_0', fileBytes: 11446208, contextLength: 128 };
    const sent = async () => (await fetch('/__test/stats').then((r) => r.json()))[entry.url] || 0;
    const first = await window.setup();
    await first.manager.clearCache();
    first.manager.registerModel(entry);
    const s0 = await sent();
    let mark = first.events.length;
    await first.manager.switchModel('fx-cached');
    const firstEvents = first.events.slice(mark);
    const s1 = await sent();
    const listed = await first.manager.cachedModels();
    // A second manager (a page reload, as far as loading goes): nothing resident, the file cached.
    const second = await window.setup();
    second.manager.registerModel(entry);
    mark = second.events.length;
    const info = await second.manager.switchModel('fx-cached');
    const secondEvents = second.events.slice(mark);
    const s2 = await sent();
    const removed = await second.manager.clearCache('fx-cached');
    const after = await second.manager.cachedModels();
    const off = await window.setup({ cache: false });
    off.manager.registerModel(entry);
    mark = off.events.length;
    await off.manager.switchModel('fx-cached');
    const offEvents = off.events.slice(mark).filter((e) => e.type === 'progress');
    const offPhases = [...new Set(offEvents.map((e) => e.data.phase))];
    const offDownloaded = Math.max(0, ...offEvents.filter((e) => e.data.phase === 'download').map((e) => e.data.loaded));
    const phases = (ev) => [...new Set(ev.filter((e) => e.type === 'progress').map((e) => e.data.phase))];
    return {
      firstPhases: phases(firstEvents), secondPhases: phases(secondEvents), offPhases, offDownloaded,
      firstInfos: window.infos(firstEvents), secondInfos: window.infos(secondEvents),
      lastDownload: firstEvents.filter((e) => e.type === 'progress' && e.data.phase === 'download').at(-1)?.data,
      cacheEvent: secondEvents.find((e) => e.type === 'progress' && e.data.phase === 'cache')?.data,
      firstBytes: s1 - s0, secondBytes: s2 - s1, listed, removed, after, info,
    };
  });
  const size = 11446208;
  assert.deepEqual(out.firstPhases, ['download', 'upload', 'ready']);
  assert.deepEqual(out.lastDownload, { phase: 'download', loaded: size, total: size, percent: 100 });
  assert.ok(out.firstBytes >= size, `the first load fetched ${out.firstBytes} bytes`);
  assert.deepEqual(out.firstInfos, ['Checking memory for fx-cached...', 'Loading model fx-cached...', 'Model fx-cached loaded successfully.']);
  assert.deepEqual(out.listed.filter((c) => c.key === 'fx-cached').map((c) => c.bytes), [size]);
  assert.deepEqual(out.secondPhases, ['cache', 'upload', 'ready']);
  assert.deepEqual(out.cacheEvent, { phase: 'cache', loaded: size, total: size, percent: 100 });
  assert.equal(out.secondBytes, 0, 'the second load used no network');
  assert.deepEqual(out.secondInfos, out.firstInfos);
  assert.equal(out.info.key, 'fx-cached');
  assert.equal(out.removed, 1);
  assert.ok(!out.after.some((c) => c.key === 'fx-cached'));
  // cache: false reads the header (a `download` of its bytes), then streams the tensors.
  assert.deepEqual(out.offPhases, ['download', 'upload', 'ready']);
  assert.ok(out.offDownloaded < size, `only the header (8 MB of tokenizer here) is downloaded first: ${out.offDownloaded}`);
});

// Last in this file: it destroys the page's WebGPU device.
test('device loss (GPUDevice.destroy()): an error event, every model unloaded, the device re-created on the next call', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, destroyDevice, DeviceLostError } = window.hearth;
    const { manager, events } = await window.setup();
    await manager.switchModel('fx-llama');
    await manager.preload('fx-qwen');
    const ex = new TaskExecutor(manager);
    const task = { modelKey: 'fx-llama', prompt: 'Hello', params: { maxTokens: 6, ignoreEos: true } };
    const before = await ex.enqueue(task).result;
    const mark = events.length;
    const destroyed = destroyDevice();
    // The browser reports the loss asynchronously.
    for (let i = 0; i < 100 && !events.slice(mark).some((e) => e.type === 'error'); i++) await new Promise((r) => setTimeout(r, 20));
    const lost = events.slice(mark);
    const state = { current: manager.currentModel, loaded: manager.loadedModels(), llama: manager.isModelLoaded('fx-llama'), ready: manager.isReady, registered: manager.memoryManager.getStats().registeredBytes };
    const mark2 = events.length;
    const info = await manager.switchModel('fx-llama');
    const recovered = window.infos(events.slice(mark2));
    const after = await ex.enqueue(task).result;
    return { destroyed, lost: lost.map((e) => [e.type, e.type === 'error' ? e.data.name : e.data, e.type === 'error' ? e.data.message : '']), state, info, recovered, before: before.text, after: after.text, loaded: manager.loadedModels().map((m) => m.key) };
  });
  assert.equal(out.destroyed, true);
  const errors = out.lost.filter((e) => e[0] === 'error');
  assert.equal(errors.length, 1, JSON.stringify(out.lost));
  assert.equal(errors[0][1], 'DeviceLostError');
  assert.match(errors[0][2], /^The GPU device was lost \(Destroyed: .*\)\. Every model on it was unloaded: fx-llama, fx-qwen\. The next load re-creates the device\.$/);
  assert.deepEqual(out.state, { current: undefined, loaded: [], llama: false, ready: false, registered: 0 });
  assert.equal(out.info.key, 'fx-llama');
  assert.deepEqual(out.recovered.filter((m) => !m.startsWith('WebGPU ready')), [
    'Requesting a WebGPU adapter...',
    'Re-created the WebGPU device after the loss (generation 1).',
    'Checking memory for fx-llama...',
    'Loading model fx-llama...',
    'Model fx-llama loaded successfully.',
  ]);
  // The same greedy tokens on the new device.
  assert.equal(out.after, out.before);
  assert.deepEqual(out.loaded, ['fx-llama']);
});
