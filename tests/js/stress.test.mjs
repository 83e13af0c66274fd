// The lifecycle under stress in the browser, with figures: switch/unload cycles on WebGPU
// (fixtures) and on the CPU backend (the real models), 10 concurrent switches, a load cancelled
// at 20 points across download, cache and upload, dispose() during generate(), the device
// destroyed in the middle of a generation, a real refused allocation ending in OutOfMemoryError,
// and WebGPU errors outside any work and inside a task, each told once on the status stream.
//
// The page's WebGPU device is reached the way an app's own code could: GPUAdapter.requestDevice
// is wrapped before the first device exists, so the test holds every GPUDevice the package
// creates (window.devices). Memory figures: the MemoryManager's account (registeredBytes), the
// allocator's measurement of the device (refresh(): reservedBytes/usedBytes), the wasm memory,
// and the JS heap after a forced collection (CDP HeapProfiler.collectGarbage +
// Runtime.getHeapUsage). The WebGPU cycles are 100 (about 75 s here); the CPU backend's, with
// the real models at 4-6 s per cycle, are 6, and 100 with HEARTH_FULL=1.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';

const FULL = process.env.HEARTH_FULL === '1';
const GPU_CYCLES = 100;
const CPU_CYCLES = FULL ? 100 : 6;

const FIXTURES = [
  { key: 'fx-llama', url: '/fixtures/llama-q4_0.gguf', arch: 'llama', quant: 'Q4_0', fileBytes: 5352288, contextLength: 128 },
  { key: 'fx-qwen', url: '/fixtures/qwen2-q4_0.gguf', arch: 'qwen2', quant: 'Q4_0', fileBytes: 11446208, contextLength: 128 },
  { key: 'fx-gemma', url: '/fixtures/gemma3-q4_0.gguf', arch: 'gemma3', quant: 'Q4_0', fileBytes: 16112992, contextLength: 128 },
  // f32 weights: 26 MiB, so that the download reports progress often enough for 7 points.
  { key: 'fx-cancel', url: '/fixtures/llama-f32.gguf', arch: 'llama', quant: 'F32', fileBytes: 27232544, contextLength: 128 },
];
const REAL = [
  { key: 'smollm2-135m', url: '/models/smollm2-135m-instruct-q4_1.gguf', arch: 'llama', quant: 'Q4_1', fileBytes: 98362432, contextLength: 8192 },
  { key: 'gemma-3-270m', url: '/models/gemma-3-270m-q4_k_m.gguf', arch: 'gemma3', quant: 'Q4_K_M', fileBytes: 253113024, contextLength: 32768 },
  { key: 'qwen2.5-0.5b', url: '/models/qwen2.5-coder-0.5b-instruct.gguf', arch: 'qwen2', quant: 'Q8_0', fileBytes: 491400064, contextLength: 32768 },
];
const MIB = 2 ** 20;
const mib = (b) => (b / MIB).toFixed(2);

let h;
let cdp;
before(async () => {
  h = await openHarness();
  cdp = await h.page.context().newCDPSession(h.page);
  await h.page.evaluate(({ fixtures, real }) => {
    // Every GPUDevice the package creates, newest last.
    window.devices = [];
    const requestDevice = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await requestDevice.apply(this, args);
      window.devices.push(device);
      return device;
    };
    // While `window.inflate` is set, the next storage buffer of at least `minSize` bytes is asked
    // for at the device's maxBufferSize (1 GiB on SwiftShader: within every WebGPU limit, and
    // refused by SwiftShader's allocator with VK_ERROR_OUT_OF_DEVICE_MEMORY). What is simulated
    // is the size of that one buffer, a model too large for the device; the refusal is the
    // browser's own.
    window.inflate = null;
    const createBuffer = GPUDevice.prototype.createBuffer;
    GPUDevice.prototype.createBuffer = function (descriptor) {
      const arm = window.inflate;
      if (arm && (descriptor.usage & GPUBufferUsage.STORAGE) && !descriptor.mappedAtCreation && descriptor.size >= arm.minSize) {
        window.inflate = null;
        arm.asked = descriptor.size;
        return createBuffer.call(this, { ...descriptor, size: this.limits.maxBufferSize });
      }
      return createBuffer.call(this, descriptor);
    };
    window.setup = async (options = {}) => {
      const { ModelManager, SseStreamer } = window.hearth;
      const streamer = new SseStreamer({ bufferSize: 64 });
      const events = [];
      streamer.subscribe((e) => events.push({ type: e.type, data: e.data, key: e.modelKey }));
      const manager = await ModelManager.create({ streamer, backend: 'webgpu', catalog: [...fixtures, ...real], cache: false, ...options });
      return { manager, events, streamer };
    };
    window.errorsOf = (events) => events.filter((e) => e.type === 'error').map((e) => ({ name: e.data.name, code: e.data.code, message: e.data.message, key: e.key }));
    window.plain = (e) => ({ name: e?.name, code: e?.code, message: e?.message, ...Object.fromEntries(Object.entries(e ?? {})) });
    // The allocator's figures once the device handed back what was dropped (a few rounds).
    window.settled = async (manager) => {
      let last = await manager.memoryManager.refresh();
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 30));
        const next = await manager.memoryManager.refresh();
        if (next.reservedBytes === last.reservedBytes && next.usedBytes === last.usedBytes) return next;
        last = next;
      }
      return last;
    };
    window.wasmBytes = async () => (await window.hearth.default()).memory.buffer.byteLength;
    window.unloadAll = async (manager) => {
      for (const m of manager.loadedModels()) await manager.unload(m.key);
    };
  }, { fixtures: FIXTURES, real: REAL });
});
after(async () => {
  assert.deepEqual(h?.pageErrors.map(String) ?? [], []);
  await h?.close();
});

/** The JS heap in use after two forced collections. */
async function jsHeap() {
  await cdp.send('HeapProfiler.collectGarbage');
  await cdp.send('HeapProfiler.collectGarbage');
  return (await cdp.send('Runtime.getHeapUsage')).usedSize;
}

/** `cycles` switch/unload cycles across `keys` on a manager of `backend`; the figures. */
async function cycleTest(backend, keys, cycles) {
  await h.page.evaluate(async ({ backend, keys }) => {
    const { manager, events } = await window.setup({ backend });
    window.cycling = { manager, events };
    // One round first: headers read, pools and the wasm memory at their working size.
    for (const key of keys) {
      await manager.switchModel(key);
      await manager.unload(key);
    }
    events.length = 0;
  }, { backend, keys });
  const heapBefore = await jsHeap();
  const before = await h.page.evaluate(async () => {
    const { manager } = window.cycling;
    return { stats: await window.settled(manager), wasm: await window.wasmBytes() };
  });
  const t0 = Date.now();
  const run = await h.page.evaluate(async ({ keys, cycles }) => {
    const { manager, events } = window.cycling;
    let peakRegistered = 0;
    const problems = [];
    for (let n = 0; n < cycles; n++) {
      const key = keys[n % keys.length];
      const info = await manager.switchModel(key);
      if (info.key !== key) problems.push(`cycle ${n}: switched to ${info.key}`);
      peakRegistered = Math.max(peakRegistered, manager.memoryManager.getStats().registeredBytes);
      if (!(await manager.unload(key))) problems.push(`cycle ${n}: ${key} was not unloaded`);
      const stats = manager.memoryManager.getStats();
      if (stats.registeredBytes !== 0 || manager.loadedModels().length !== 0) problems.push(`cycle ${n}: ${stats.registeredBytes} B still registered`);
      const errors = window.errorsOf(events);
      if (errors.length) problems.push(`cycle ${n}: ${JSON.stringify(errors)}`);
      // Only the last cycle's events are kept: the test itself must not grow the heap.
      events.length = 0;
    }
    return { peakRegistered, problems };
  }, { keys, cycles });
  const seconds = (Date.now() - t0) / 1000;
  const heapAfter = await jsHeap();
  const afterStats = await h.page.evaluate(async () => {
    const { manager } = window.cycling;
    const out = { stats: await window.settled(manager), wasm: await window.wasmBytes() };
    window.cycling = null;
    return out;
  });
  return { before, after: afterStats, heapBefore, heapAfter, seconds, ...run };
}

test(`WebGPU: ${GPU_CYCLES} switch/unload cycles across three fixtures: the allocator and the account at the baseline, the JS heap not growing`, async () => {
  const keys = ['fx-llama', 'fx-qwen', 'fx-gemma'];
  const r = await cycleTest('webgpu', keys, GPU_CYCLES);
  const [b, a] = [r.before.stats, r.after.stats];
  console.log(`webgpu ${GPU_CYCLES} cycles in ${r.seconds.toFixed(1)} s (${(r.seconds * 1000 / GPU_CYCLES).toFixed(0)} ms per cycle): `
    + `device reserved ${b.reservedBytes} -> ${a.reservedBytes} B, used ${b.usedBytes} -> ${a.usedBytes} B, `
    + `registered ${b.registeredBytes} -> ${a.registeredBytes} B (peak ${mib(r.peakRegistered)} MiB); `
    + `wasm memory ${mib(r.before.wasm)} -> ${mib(r.after.wasm)} MiB; JS heap ${mib(r.heapBefore)} -> ${mib(r.heapAfter)} MiB`);
  assert.deepEqual(r.problems, []);
  assert.ok(r.peakRegistered > 1e6, 'the models were registered while loaded');
  assert.equal(a.registeredBytes, 0);
  // The allocator holds what it held before, within 1% (cubecl's small pools for parameters).
  assert.ok(Math.abs(a.reservedBytes - b.reservedBytes) <= b.reservedBytes * 0.01, `reserved ${b.reservedBytes} -> ${a.reservedBytes}`);
  assert.ok(Math.abs(a.usedBytes - b.usedBytes) <= Math.max(b.usedBytes * 0.01, 65536), `used ${b.usedBytes} -> ${a.usedBytes}`);
  assert.ok(r.after.wasm <= r.before.wasm * 1.01, `wasm memory ${r.before.wasm} -> ${r.after.wasm}`);
  // The JS heap: no growth beyond noise (a leak per cycle would show as cycles x its size).
  assert.ok(r.heapAfter - r.heapBefore < Math.max(r.heapBefore * 0.02, 256 * 1024), `JS heap ${r.heapBefore} -> ${r.heapAfter}`);
});

test(`CPU backend: ${CPU_CYCLES} switch/unload cycles across the three real models: the account at the baseline, wasm memory and the JS heap not growing`, async () => {
  const keys = REAL.map((m) => m.key);
  const r = await cycleTest('cpu', keys, CPU_CYCLES);
  const [b, a] = [r.before.stats, r.after.stats];
  console.log(`cpu ${CPU_CYCLES} cycles (real models) in ${r.seconds.toFixed(1)} s (${(r.seconds / CPU_CYCLES).toFixed(1)} s per cycle): `
    + `registered ${b.registeredBytes} -> ${a.registeredBytes} B (peak ${mib(r.peakRegistered)} MiB); used ${b.usedBytes} -> ${a.usedBytes} B; `
    + `wasm memory ${mib(r.before.wasm)} -> ${mib(r.after.wasm)} MiB; JS heap ${mib(r.heapBefore)} -> ${mib(r.heapAfter)} MiB`);
  assert.deepEqual(r.problems, []);
  assert.ok(r.peakRegistered > 90e6, 'the real models were registered while loaded');
  assert.equal(a.registeredBytes, 0);
  // The CPU backend's weights live in the wasm memory, which never shrinks: after the first
  // round it holds the largest model, and the cycles reuse it.
  assert.ok(r.after.wasm <= r.before.wasm * 1.01, `wasm memory ${r.before.wasm} -> ${r.after.wasm}`);
  assert.ok(r.heapAfter - r.heapBefore < Math.max(r.heapBefore * 0.02, 256 * 1024), `JS heap ${r.heapBefore} -> ${r.heapAfter}`);
});

test('10 concurrent switchModel calls: one load per distinct model, each call resolves with its model, a consistent state', async () => {
  const out = await h.page.evaluate(async () => {
    const { manager, events } = await window.setup();
    const keys = ['fx-llama', 'fx-qwen', 'fx-llama', 'fx-gemma', 'fx-qwen', 'fx-llama', 'fx-gemma', 'fx-qwen', 'fx-llama', 'fx-gemma'];
    const settled = await Promise.allSettled(keys.map((k) => manager.switchModel(k)));
    const loading = events.filter((e) => e.type === 'info' && e.data.startsWith('Loading model ')).map((e) => e.data);
    const out = {
      keys, status: settled.map((s) => s.status), got: settled.map((s) => s.value?.key), loading,
      errors: window.errorsOf(events), current: manager.currentModel, ready: manager.isReady,
      loaded: manager.loadedModels().map((m) => m.key).sort(),
      registered: manager.memoryManager.getStats().registeredBytes,
      sum: manager.loadedModels().reduce((a, m) => a + m.bytes, 0),
    };
    await window.unloadAll(manager);
    return out;
  });
  assert.deepEqual(out.status, Array(10).fill('fulfilled'));
  assert.deepEqual(out.got, out.keys, 'every call resolves with its own model');
  assert.deepEqual(out.loading, ['Loading model fx-llama...', 'Loading model fx-qwen...', 'Loading model fx-gemma...'],
    'one load per distinct model, in call order');
  assert.deepEqual(out.errors, []);
  // Loads run in call order and a call joins its key's waiting operation (the ModelManager v3.1
  // design): the chain's last operation, fx-gemma's, made its model current.
  assert.equal(out.current, 'fx-gemma');
  assert.equal(out.ready, true);
  assert.deepEqual(out.loaded, ['fx-gemma', 'fx-llama', 'fx-qwen']);
  assert.equal(out.registered, out.sum);
});

test('a load cancelled at 20 points across download, cache and upload: CancelledError, the previous model current, memory at the baseline', async () => {
  const t0 = Date.now();
  const out = await h.page.evaluate(async () => {
    const { CancelledError } = window.hearth;
    const { manager, events } = await window.setup({ cache: true });
    const key = 'fx-cancel';
    await manager.clearCache(key);
    // Reference loads: every progress event of a download-and-upload, then of a cached load.
    const phases = async () => {
      const mark = events.length;
      await manager.switchModel(key);
      const seen = events.slice(mark).filter((e) => e.type === 'progress' && e.key === key).map((e) => e.data.phase);
      await manager.unload(key);
      return seen;
    };
    const first = await phases();
    const cached = await phases();
    const count = (list, phase) => list.filter((p) => p === phase).length;
    const downloads = count(first, 'download');
    const uploads = count(cached, 'upload');
    await manager.switchModel('fx-llama');
    const baseline = await window.settled(manager);
    // 20 points: 7 in the download (the cache emptied first), 1 at the cache event, 12 in the
    // upload (from the cached copy); the abort fires inside the N-th progress event of a phase.
    const points = [];
    // A download's reports depend on how the chunks arrive, so its points are percentages (the
    // first report at or past each); the upload's are the same every time, so they are counts.
    // (The last reports of a phase come after its last check: nothing is left to stop there.)
    for (let i = 0; i < 7; i++) points.push({ phase: 'download', percent: Math.round(i * 85 / 6) });
    points.push({ phase: 'cache', n: 1 });
    for (let i = 0; i < 12; i++) points.push({ phase: 'upload', n: 1 + Math.floor(i * (uploads - 3) / 11) });
    const results = [];
    for (const point of points) {
      if (point.phase === 'download') await manager.clearCache(key);
      // The cancelled downloads left nothing in the cache: one whole load stores the file again.
      if (point.phase === 'cache') {
        await manager.switchModel(key);
        await manager.unload(key);
        await manager.switchModel('fx-llama');
        await window.settled(manager);
      }
      const ac = new AbortController();
      let seen = 0;
      const unsubscribe = manager.sseStreamer.subscribe((e) => {
        if (e.modelKey !== key || e.type !== 'progress' || e.data.phase !== point.phase || ac.signal.aborted) return;
        seen += 1;
        if (point.percent === undefined ? seen === point.n : e.data.percent >= point.percent) {
          point.at = `${seen}th report, ${e.data.percent.toFixed(1)}%`;
          ac.abort();
        }
      });
      const mark = events.length;
      const error = await manager.switchModel(key, { signal: ac.signal }).then(() => null, (e) => e);
      unsubscribe();
      const stats = await window.settled(manager);
      results.push({
        ...point, cancelled: error instanceof CancelledError, error: window.plain(error),
        errors: window.errorsOf(events.slice(mark)), current: manager.currentModel,
        loaded: manager.loadedModels().map((m) => m.key), reserved: stats.reservedBytes, used: stats.usedBytes,
        registered: stats.registeredBytes,
      });
    }
    const left = (await manager.cachedModels()).filter((c) => c.key === key).length;
    await window.unloadAll(manager);
    await manager.clearCache();
    return { first, cached, downloads, uploads, baseline, results, left };
  });
  const b = out.baseline;
  console.log(`cancellation: reference load ${out.downloads} download + ${out.uploads} upload events; baseline reserved ${b.reservedBytes} B, `
    + `used ${b.usedBytes} B; after each point reserved ${out.results.map((r) => r.reserved).join(',')}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.ok(out.downloads >= 8, `download events: ${out.downloads}`);
  console.log(`cancelled at: ${out.results.map((r) => `${r.phase} ${r.at}`).join('; ')}`);
  assert.ok(out.cached.includes('cache') && !out.cached.includes('download'), JSON.stringify(out.cached));
  assert.ok(out.uploads >= 20, `upload events: ${out.uploads}`);
  assert.equal(out.results.length, 20);
  for (const r of out.results) {
    const at = `${r.phase} ${r.n === undefined ? `${r.percent}%` : `#${r.n}`} (${r.at})`;
    assert.ok(r.cancelled, `${at}: ${JSON.stringify(r.error)}`);
    assert.equal(r.error.code, 'ABORTED', at);
    assert.deepEqual(r.errors.map((e) => e.name), ['CancelledError'], `${at}: told once`);
    assert.equal(r.current, 'fx-llama', at);
    assert.deepEqual(r.loaded, ['fx-llama'], at);
    assert.equal(r.registered, b.registeredBytes, at);
    assert.ok(Math.abs(r.reserved - b.reservedBytes) <= b.reservedBytes * 0.01, `${at}: reserved ${b.reservedBytes} -> ${r.reserved}`);
    assert.ok(Math.abs(r.used - b.usedBytes) <= Math.max(b.usedBytes * 0.01, 65536), `${at}: used ${b.usedBytes} -> ${r.used}`);
  }
  assert.equal(out.left, 1, 'the cancelled downloads left no file; the last cached copy stays');
});

test('dispose() during generate(): the generation stops between tokens, the memory is freed, later calls fail with a typed error', async () => {
  const out = await h.page.evaluate(async () => {
    const { GgufFile, LanguageModel, MemoryManager, SseStreamer, HearthError } = window.hearth;
    const streamer = new SseStreamer();
    const mm = await MemoryManager.create(streamer, { backend: 'webgpu' });
    const baseline = (await mm.refresh()).usedBytes;
    const file = await GgufFile.fromUrl('/fixtures/llama-q4_0.gguf');
    const model = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 128 });
    const loaded = (await mm.refresh()).usedBytes;
    const tokens = [];
    const error = await model.generate('Hello', {
      maxTokens: 32, ignoreEos: true,
      onToken: (t) => { tokens.push(t.index); if (t.index === 2) model.dispose(); },
    }).then(() => null, (e) => e);
    let after = await mm.refresh();
    for (let i = 0; i < 10 && after.usedBytes > baseline + 65536; i++) {
      await new Promise((r) => setTimeout(r, 30));
      after = await mm.refresh();
    }
    const later = await model.generate('Hello', { maxTokens: 2 }).then(() => null, (e) => e);
    return {
      tokens, error: window.plain(error), isHearth: error instanceof HearthError, disposed: model.disposed,
      later: window.plain(later), baseline, loaded, after: after.usedBytes,
    };
  });
  console.log(`dispose during generate: tokens ${out.tokens.join(',')}; used ${out.baseline} -> ${out.loaded} (loaded) -> ${out.after} B`);
  assert.ok(out.isHearth, JSON.stringify(out.error));
  assert.equal(out.error.code, 'MODEL_DISPOSED');
  assert.match(out.error.message, /disposed during the generation/);
  // Disposed inside token 2's callback: the check before token 3's callback stops it.
  assert.deepEqual(out.tokens, [0, 1, 2, 3]);
  assert.equal(out.disposed, true);
  assert.ok(out.loaded > out.baseline + 1e6, 'the model was on the device');
  assert.ok(out.after <= out.baseline * 1.01 + 65536, `used ${out.baseline} -> ${out.after}`);
  assert.equal(out.later.code, 'MODEL_DISPOSED');
});

test('destroyDevice() in the middle of a generation: DeviceLostError, told once, then a new load works on a new device', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, destroyDevice, DeviceLostError, GgufFile, LanguageModel, SseStreamer } = window.hearth;
    const { manager, events } = await window.setup();
    await manager.switchModel('fx-llama');
    const ex = new TaskExecutor(manager);
    const params = { maxTokens: 12, ignoreEos: true };
    const before = await ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params }).result;
    const devices = window.devices.length;
    const mark = events.length;
    const tokens = [];
    const task = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params: { ...params, onToken: (t) => { tokens.push(t.index); if (t.index === 2) destroyDevice(); } } });
    const error = await task.result.then(() => null, (e) => e);
    // The loss event may come after the rejection.
    for (let i = 0; i < 100 && !events.slice(mark).some((e) => e.type === 'error'); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    const lost = window.errorsOf(events.slice(mark));
    const state = { current: manager.currentModel, loaded: manager.loadedModels().length, registered: manager.memoryManager.getStats().registeredBytes };
    const again = await manager.switchModel('fx-llama');
    const after = await ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params }).result;
    const r1 = { tokens, error: window.plain(error), isLost: error instanceof DeviceLostError, lost, state, again: again.key, before: before.text, after: after.text, newDevice: window.devices.length > devices };
    await window.unloadAll(manager);

    // A LanguageModel of its own (no manager): its generation rejects with DeviceLostError.
    const streamer = new SseStreamer();
    const file = await GgufFile.fromUrl('/fixtures/llama-q4_0.gguf');
    const model = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 128 });
    const own = await model.generate('Hello', { maxTokens: 12, ignoreEos: true, onToken: (t) => { if (t.index === 1) destroyDevice(); } }).then(() => null, (e) => e);
    const later = await model.generate('Hello', { maxTokens: 2 }).then(() => null, (e) => e);
    const reloaded = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 128 });
    const text = (await reloaded.generate('Hello', { maxTokens: 12, ignoreEos: true })).text;
    reloaded.dispose();
    return { r1, own: window.plain(own), ownIsLost: own instanceof DeviceLostError, disposed: model.disposed, later: window.plain(later), text };
  });
  const r = out.r1;
  console.log(`device destroyed at token 2: task rejected after tokens ${r.tokens.join(',')} with ${r.error.name}; errors told: ${JSON.stringify(r.lost)}`);
  assert.ok(r.isLost, JSON.stringify(r.error));
  assert.equal(r.error.code, 'DEVICE_LOST');
  assert.ok(r.tokens.length >= 3 && r.tokens.length < 12, `stopped early: ${r.tokens}`);
  assert.equal(r.lost.length, 1, `told once: ${JSON.stringify(r.lost)}`);
  assert.equal(r.lost[0].name, 'DeviceLostError');
  assert.match(r.lost[0].message, /^The GPU device was lost \(Destroyed: .*\)\. Every model on it was unloaded: fx-llama\./);
  assert.deepEqual(r.state, { current: undefined, loaded: 0, registered: 0 });
  assert.equal(r.again, 'fx-llama');
  assert.ok(r.newDevice, 'a new GPUDevice was created');
  assert.equal(r.after, r.before, 'the same greedy tokens on the new device');
  assert.ok(out.ownIsLost, JSON.stringify(out.own));
  assert.equal(out.own.code, 'DEVICE_LOST');
  assert.equal(out.disposed, true, 'the model went with its device');
  assert.equal(out.later.code, 'MODEL_DISPOSED');
  assert.equal(out.text, r.before, 'a new load works and generates the same tokens');
});

test('out of memory: a buffer the browser refuses during a real model\'s load is an OutOfMemoryError, memory at the baseline, the previous model current', async () => {
  const t0 = Date.now();
  const out = await h.page.evaluate(async () => {
    const { OutOfMemoryError, TaskExecutor } = window.hearth;
    const { manager, events } = await window.setup();
    await manager.switchModel('fx-llama');
    const ex = new TaskExecutor(manager);
    const params = { maxTokens: 8, ignoreEos: true };
    const before = await ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params }).result;
    const baseline = await window.settled(manager);
    const device = window.devices.at(-1);
    const arm = { minSize: 1 << 20 };
    // Armed once a third of SmolLM2's weights are on the device: the next weight buffer.
    const unsubscribe = manager.sseStreamer.subscribe((e) => {
      if (e.modelKey === 'smollm2-135m' && e.type === 'progress' && e.data.phase === 'upload' && e.data.percent >= 33 && !arm.armed) {
        arm.armed = e.data.percent;
        window.inflate = arm;
      }
    });
    const mark = events.length;
    const error = await manager.switchModel('smollm2-135m').then(() => null, (e) => e);
    unsubscribe();
    window.inflate = null;
    await new Promise((r) => setTimeout(r, 200));
    const errors = window.errorsOf(events.slice(mark));
    const stats = await window.settled(manager);
    const state = { current: manager.currentModel, loaded: manager.loadedModels().map((m) => m.key) };
    const afterOom = await ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params }).result;
    // Without the oversized buffer the same model loads.
    const mark2 = events.length;
    const retry = await manager.switchModel('smollm2-135m').then((i) => i.key, (e) => window.plain(e));
    const retryErrors = window.errorsOf(events.slice(mark2));
    await window.unloadAll(manager);
    return {
      error: window.plain(error), isOom: error instanceof OutOfMemoryError, arm: { armed: arm.armed, asked: arm.asked },
      maxBufferSize: device.limits.maxBufferSize, errors, baseline, stats, state, before: before.text, afterOom: afterOom.text, retry, retryErrors,
    };
  });
  console.log(`out of memory: armed at ${out.arm.armed}% of the upload, a ${out.arm.asked} B buffer asked at ${out.maxBufferSize} B; `
    + `${out.error.name}: ${out.error.message}; reserved ${out.baseline.reservedBytes} -> ${out.stats.reservedBytes} B, `
    + `used ${out.baseline.usedBytes} -> ${out.stats.usedBytes} B; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.ok(out.arm.asked > 0, 'a buffer of the load was asked at 1 GiB');
  assert.ok(out.isOom, JSON.stringify(out.error));
  assert.equal(out.error.code, 'OUT_OF_MEMORY');
  assert.equal(out.error.modelKey, 'smollm2-135m');
  // wgpu's WebGPU backend hands on the error's kind only ("Out of Memory: <WebGPU Error>").
  assert.match(out.error.message, /^The GPU ran out of memory loading smollm2-135m \(Out of Memory/);
  assert.deepEqual(out.errors.map((e) => e.name), ['OutOfMemoryError'], `told once: ${JSON.stringify(out.errors)}`);
  assert.deepEqual(out.state, { current: 'fx-llama', loaded: ['fx-llama'] });
  assert.equal(out.stats.registeredBytes, out.baseline.registeredBytes);
  assert.ok(Math.abs(out.stats.reservedBytes - out.baseline.reservedBytes) <= out.baseline.reservedBytes * 0.01,
    `reserved ${out.baseline.reservedBytes} -> ${out.stats.reservedBytes}`);
  assert.ok(Math.abs(out.stats.usedBytes - out.baseline.usedBytes) <= Math.max(out.baseline.usedBytes * 0.01, 65536),
    `used ${out.baseline.usedBytes} -> ${out.stats.usedBytes}`);
  assert.equal(out.afterOom, out.before, 'the previous model still generates the same tokens');
  assert.equal(out.retry, 'smollm2-135m', JSON.stringify(out.retry));
  assert.deepEqual(out.retryErrors, []);
});

test('WebGPU errors: one outside any work is one error event; one inside a task fails it with one error event', async () => {
  const out = await h.page.evaluate(async () => {
    const { TaskExecutor, GpuError } = window.hearth;
    const { manager, events } = await window.setup();
    await manager.switchModel('fx-llama');
    const device = window.devices.at(-1);
    // A validation error no error scope catches: MAP_READ goes only with COPY_DST.
    const provoke = () => device.createBuffer({ label: 'invalid on purpose', size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    const mark = events.length;
    provoke();
    // Chrome sends a device's commands to its GPU process at the next flush: an app's own submit.
    device.queue.submit([]);
    for (let i = 0; i < 50 && !events.slice(mark).some((e) => e.type === 'error'); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    const idle = window.errorsOf(events.slice(mark));
    const ex = new TaskExecutor(manager);
    const mark2 = events.length;
    const tokens = [];
    const task = ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params: { maxTokens: 12, ignoreEos: true, onToken: (t) => { tokens.push(t.index); if (t.index === 1) provoke(); } } });
    const error = await task.result.then(() => null, (e) => e);
    await new Promise((r) => setTimeout(r, 100));
    const inTask = window.errorsOf(events.slice(mark2));
    const next = await ex.enqueue({ modelKey: 'fx-llama', prompt: 'Hello', params: { maxTokens: 4, ignoreEos: true } }).result;
    const out = { idle, error: window.plain(error), isGpu: error instanceof GpuError, inTask, tokens, next: next.generatedTokens, loaded: manager.loadedModels().map((m) => m.key) };
    await window.unloadAll(manager);
    return out;
  });
  console.log('outside any work:', JSON.stringify(out.idle), '| in a task:', JSON.stringify(out.inTask));
  assert.equal(out.idle.length, 1, JSON.stringify(out.idle));
  assert.equal(out.idle[0].name, 'GpuError');
  assert.equal(out.idle[0].code, 'GPU_ERROR');
  assert.match(out.idle[0].message, /^The GPU reported an error while no model was loading or generating \(WebGPU validation error: [\s\S]*invalid on purpose/);
  assert.ok(out.isGpu, JSON.stringify(out.error));
  assert.equal(out.error.code, 'GPU_ERROR');
  assert.equal(out.error.gpuErrorKind, 'validation');
  assert.equal(out.inTask.length, 1, `one error event, not two: ${JSON.stringify(out.inTask)}`);
  assert.equal(out.inTask[0].code, 'GPU_ERROR');
  assert.equal(out.inTask[0].key, 'fx-llama');
  assert.ok(out.tokens.length < 12, `the generation stopped: ${out.tokens}`);
  assert.equal(out.next, 4, 'the model and the queue go on');
  assert.deepEqual(out.loaded, ['fx-llama']);
});
