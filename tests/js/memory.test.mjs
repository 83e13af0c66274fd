// MemoryManager in the browser, on Chromium's SwiftShader adapter: limits and budget detection,
// the exact requirement from a GGUF header against the bytes the allocator really holds after a
// load, simulation, LRU/pin eviction order, typed errors, metrics events, and memory returning
// after dispose. `HEARTH_MEMORY_MODELS=smol` restricts the load checks to SmolLM2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openHarness } from './harness.mjs';

const ALL_MODELS = ['smollm2-135m-instruct-q4_1', 'gemma-3-270m-q4_k_m', 'qwen2.5-coder-0.5b-instruct'];
const MODELS = process.env.HEARTH_MEMORY_MODELS === 'smol' ? ALL_MODELS.slice(0, 1) : ALL_MODELS;

let h;
before(async () => { h = await openHarness(); });
after(async () => { await h?.close(); });

test('create: SwiftShader limits detected, budget from the cpu-software tier, said on the stream', async () => {
  const out = await h.page.evaluate(async () => {
    const { MemoryManager, SseStreamer } = window.hearth;
    const streamer = new SseStreamer();
    const events = [];
    streamer.subscribe((e) => events.push({ type: e.type, data: e.data }));
    const mm = await MemoryManager.create(streamer, { backend: 'webgpu', deviceMemoryGb: 8 });
    // The allocation probe: 2.5 GB of buffers inside an out-of-memory error scope, released at
    // once; it reached its cap, which is more than the tier estimate (2 GB), so it sets the budget.
    const probeEvents = [];
    const ps = new SseStreamer();
    ps.subscribe((e) => probeEvents.push(e.data));
    const probed = await MemoryManager.create(ps, { backend: 'webgpu', deviceMemoryGb: 8, probe: { capBytes: 2.5 * 2 ** 30 } });
    const badProbe = await MemoryManager.create(streamer, { backend: 'webgpu', probe: 'yes' }).then(
      () => null, (e) => ({ name: e.name, code: e.code, message: e.message }));
    return { adapter: mm.adapter, limits: mm.limits, budget: mm.budget, stats: mm.getStats(), backend: mm.backend, events,
      probe: { adapter: probed.adapter, budget: probed.budget, events: probeEvents, stats: probed.getStats() }, badProbe };
  });
  console.log('adapter:', JSON.stringify(out.adapter));
  console.log('budget:', out.budget.explanation);
  assert.equal(out.backend, 'webgpu');
  assert.ok(out.limits.maxStorageBufferBindingSize > 0, JSON.stringify(out.limits));
  assert.ok(out.limits.maxBufferSize > 0);
  assert.equal(out.adapter.maxStorageBufferBindingSize, out.limits.maxStorageBufferBindingSize);
  assert.deepEqual(out.budget.estimatedFrom, { source: 'tierTable', tier: 'cpu-software' });
  assert.equal(out.budget.adapterClass, 'cpu');
  // 25% of the 8 GB given, less the 10% margin.
  assert.equal(out.budget.rawBytes, 2 * 2 ** 30);
  assert.equal(out.budget.bytes, Math.floor(2 * 2 ** 30 * 0.9));
  assert.deepEqual(out.stats.estimatedFrom, out.budget.estimatedFrom);
  assert.equal(out.stats.measured, true);
  const infos = out.events.filter((e) => e.type === 'info').map((e) => e.data);
  assert.ok(infos.some((m) => /^GPU memory budget: 1\.8 GB \(estimated from the adapter tier table, tier cpu-software/.test(m)),
    infos.join(' | '));
  assert.ok(out.events.some((e) => e.type === 'metrics' && e.data.budgetBytes === out.budget.bytes));
  assert.deepEqual(out.probe.adapter.probe, { allocatedBytes: 2.5 * 2 ** 30, hitOutOfMemory: false });
  assert.deepEqual(out.probe.budget.estimatedFrom, { source: 'probe' });
  assert.equal(out.probe.budget.rawBytes, 2.5 * 2 ** 30);
  assert.match(out.probe.budget.explanation, /^An allocation probe reached its cap of 2\.5 GB without running out of memory/);
  assert.ok(out.probe.events.includes('Allocation probe: 2.5 GB allocated and released (its cap).'), out.probe.events.join(' | '));
  assert.equal(out.badProbe?.name, 'InvalidInputError');
  assert.equal(out.badProbe.code, 'INVALID_OPTIONS');
});

test('canLoadModel: low-VRAM and simulated budgets, LRU evictable order, pins, typed errors', async () => {
  const out = await h.page.evaluate(async () => {
    const { GgufFile, MemoryManager, SseStreamer } = window.hearth;
    const streamer = new SseStreamer();
    const events = [];
    streamer.subscribe((e) => events.push({ type: e.type, data: e.data, modelKey: e.modelKey }));
    const mm = await MemoryManager.create(streamer, { backend: 'webgpu' });
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const req = mm.requirementFor(file, { contextLength: 2048 });
    const real = mm.canLoadModel('smol', req);
    // Low VRAM (256 MB) refuses the default model (Gemma 3 270M, 311 MB) and takes SmolLM2.
    const gemma = mm.requirementFor(await GgufFile.fromUrl('/models/gemma-3-270m-q4_k_m.gguf'), { contextLength: 2048 });
    mm.setSimulationLowVRAM(true);
    const low = mm.canLoadModel('gemma', gemma);
    const lowSmol = mm.canLoadModel('smol', req);
    const lowStats = mm.getStats();
    mm.setSimulatedBudget(req.totalBytes + 1000);
    const simFits = mm.canLoadModel('smol', req);
    mm.setSimulatedBudget(req.totalBytes - 1);
    const simShort = mm.canLoadModel('smol', req.totalBytes);
    mm.setSimulatedBudget(null);
    const stillLow = mm.canLoadModel('gemma', gemma);
    mm.setSimulationLowVRAM(false);
    const back = mm.canLoadModel('smol', req);

    // LRU: a, b, c registered in that order, then a used again.
    mm.setBudgetBytes(1000);
    mm.registerLoaded('a', 300);
    mm.registerLoaded('b', 200);
    mm.registerLoaded('c', 100);
    const touched = mm.touch('a');
    const lru = mm.canLoadModel('x', 600);
    const pinned = mm.pin('b');
    const withPin = mm.canLoadModel('x', 600);
    const tooBig = mm.canLoadModel('x', 900);
    mm.unpin('b');
    const overrideStats = mm.getStats();
    const unknown = [mm.touch('nope'), mm.pin('nope')];
    mm.setBudgetBytes(null);
    const afterOverride = mm.budget;

    const errors = [];
    for (const f of [
      () => mm.registerLoaded('a', -1),
      () => mm.registerLoaded('', 1),
      () => mm.registerLoaded(42, 1),
      () => mm.canLoadModel('x', 'lots'),
      () => mm.canLoadModel('x', { totalBytes: -5 }),
      () => mm.setBudgetBytes(1.5),
      () => mm.setSimulatedBudget(NaN),
      () => mm.requirementFor(file, { contextLength: 'long' }),
    ]) {
      try { f(); errors.push(null); } catch (e) { errors.push({ name: e.name, code: e.code, message: e.message }); }
    }
    const bad = await MemoryManager.create(streamer, { backend: 'gpu' }).then(() => null, (e) => e.name);
    const metrics = events.filter((e) => e.type === 'metrics');
    return { req, gemma, lowSmol, real, low, lowStats, simFits, simShort, stillLow, back, touched, lru, pinned, withPin, tooBig,
      overrideStats, unknown, afterOverride, errors, bad, metrics };
  });
  console.log(`SmolLM2 requirement at 2048: ${out.req.totalBytes} B (weights ${out.req.weightBytes}, KV ${out.req.kvCacheBytes}, activations ${out.req.activationBytes})`);
  console.log('low VRAM:', out.low.reason);
  assert.equal(out.req.exact, true);
  assert.deepEqual(out.req.problems, []);
  assert.equal(out.real.can, true, out.real.reason);
  assert.match(out.real.reason, /^Fits \(available: .+, required: .+\)$/);
  assert.equal(out.low.can, false);
  assert.equal(out.low.simulated, true);
  assert.equal(out.low.budgetBytes, 256 * 2 ** 20);
  assert.equal(out.low.reason, 'Not enough VRAM (available: 256 MB, required: 311 MB)');
  assert.deepEqual(out.low.limit, { kind: 'totalBudget' });
  assert.equal(out.low.requiredBytes, out.gemma.totalBytes);
  assert.equal(out.lowSmol.can, true, out.lowSmol.reason);
  assert.equal(out.lowStats.simulated, true);
  assert.equal(out.lowStats.budgetBytes, 256 * 2 ** 20);
  assert.equal(out.simFits.can, true, out.simFits.reason);
  assert.equal(out.simShort.can, false, 'a byte count works as the requirement');
  assert.equal(out.simShort.requiredBytes, out.req.totalBytes);
  assert.equal(out.stillLow.can, false, 'ending the simulated budget goes back to the low-VRAM simulation');
  assert.equal(out.back.can, true);
  assert.equal(out.back.simulated, false);

  assert.equal(out.touched, true);
  assert.deepEqual(out.lru.evictable.map((e) => e.key), ['b', 'c', 'a'], 'least recently used first');
  assert.deepEqual(out.lru.evictable.map((e) => e.cumulativeBytes), [200, 300, 600]);
  assert.equal(out.lru.availableBytes, 400);
  assert.equal(out.lru.can, false);
  assert.equal(out.lru.fitsAfterEviction, true);
  assert.equal(out.pinned, true);
  assert.deepEqual(out.withPin.evictable.map((e) => e.key), ['c', 'a'], 'a pinned model is not evictable');
  assert.equal(out.tooBig.fitsAfterEviction, false);
  assert.deepEqual(out.overrideStats.estimatedFrom, { source: 'override' });
  assert.equal(out.overrideStats.registeredBytes, 600);
  assert.deepEqual(out.overrideStats.loaded.map((m) => m.key), ['b', 'c', 'a']);
  assert.ok(out.overrideStats.loaded.every((m) => typeof m.lastUsed === 'number'));
  assert.deepEqual(out.unknown, [false, false]);
  assert.deepEqual(out.afterOverride.estimatedFrom, { source: 'tierTable', tier: 'cpu-software' });

  for (const [i, e] of out.errors.entries()) {
    assert.ok(e, `call ${i} should have thrown`);
    assert.equal(e.name, 'InvalidInputError', `call ${i}: ${e.message}`);
  }
  assert.equal(out.bad, 'InvalidInputError');
  // registerLoaded emits metrics, tagged with the model.
  const tagged = out.metrics.filter((m) => m.modelKey === 'c');
  assert.ok(tagged.length >= 1 && tagged[0].data.loadedModels === 3, JSON.stringify(tagged));
});

for (const stem of MODELS) {
  test(`${stem}: requirement within 0.1% of the measured resident bytes; memory returns after dispose`, async () => {
    const t0 = Date.now();
    const out = await h.page.evaluate(async ({ url, key }) => {
      const { GgufFile, LanguageModel, MemoryManager, SseStreamer } = window.hearth;
      const streamer = new SseStreamer();
      const events = [];
      streamer.subscribe((e) => { if (e.type === 'metrics') events.push({ data: e.data, modelKey: e.modelKey }); });
      const mm = await MemoryManager.create(streamer, { backend: 'webgpu' });
      const file = await GgufFile.fromUrl(url);
      const req = mm.requirementFor(file, { contextLength: 2048 });
      const verdict = mm.canLoadModel(key, req);
      const baseline = (await mm.refresh()).reservedBytes;
      const model = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 2048, key });
      const info = model.info;
      const loaded = mm.getStats();
      mm.registerLoaded(key, loaded.reservedBytes - baseline);
      const registered = mm.getStats();
      model.dispose();
      mm.registerUnloaded(key);
      let afterStats = await mm.refresh();
      // Dropped buffers go back once the queue has moved on; give it a few rounds.
      for (let i = 0; i < 5 && afterStats.reservedBytes > baseline * 1.02 + 65536; i++) {
        await new Promise((r) => setTimeout(r, 50));
        afterStats = await mm.refresh();
      }
      await new Promise((r) => setTimeout(r, 50));
      return { req, verdict, baseline, info, loaded, registered, after: afterStats, events };
    }, { url: `/models/${stem}.gguf`, key: stem });
    // Measured: what the allocator holds for the whole device, less what it held before.
    const measured = out.loaded.reservedBytes - out.baseline;
    const ratio = out.req.totalBytes / measured;
    console.log(`${stem}: required ${out.req.totalBytes} B (weights ${out.req.weightBytes}, KV ${out.req.kvCacheBytes}, `
      + `activations ${out.req.activationBytes}); measured ${measured} B resident (${out.loaded.reservedBytes} - baseline ${out.baseline}); model's own buffers ${out.info.residentBytes} B; `
      + `ratio ${ratio.toFixed(4)}; after dispose ${out.after.reservedBytes} B; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    assert.equal(out.verdict.can, true, out.verdict.reason);
    // The requirement is the loader's allocation plan, each buffer as allocated; what the
    // allocator holds beyond it is cubecl's small pools for kernel parameters.
    assert.ok(Math.abs(ratio - 1) <= 0.001, `requirement ${out.req.totalBytes} vs measured ${measured}`);
    // The model's own buffers (what the ModelManager registers) are what the allocator gained.
    assert.ok(Math.abs(out.info.residentBytes / measured - 1) < 0.01, `model ${out.info.residentBytes} vs allocator ${measured}`);
    assert.ok(out.loaded.usedBytes <= out.loaded.reservedBytes);
    assert.equal(out.registered.loaded[0].key, stem);
    assert.equal(out.registered.registeredBytes, measured);
    // Memory comes back: what stays is cubecl's small pools, within 2% of the baseline (and of
    // what the model held).
    const held = measured;
    assert.ok(out.after.reservedBytes <= out.baseline * 1.02 + held * 0.02,
      `after dispose ${out.after.reservedBytes} B, baseline ${out.baseline} B, loaded ${out.loaded.reservedBytes} B`);
    assert.ok(out.after.reservedBytes >= out.baseline * 0.98 - held * 0.02);
    assert.equal(out.after.loaded.length, 0);
    const tagged = out.events.filter((e) => e.modelKey === stem);
    assert.ok(tagged.some((e) => e.data.loadedModels === 1), 'metrics after registerLoaded');
    assert.ok(tagged.some((e) => e.data.loadedModels === 0), 'metrics after registerUnloaded');
  });
}

test('the per-tensor limit: a fixture whose tensors are wider than a (simulated) binding limit is refused, naming the tensor', async () => {
  // SwiftShader allows 1 GiB bindings, and only a 268M-wide f32 row would exceed that; the
  // simulated limit runs the same check on a tiny real GGUF instead.
  const out = await h.page.evaluate(async () => {
    const { GgufFile, MemoryManager, SseStreamer } = window.hearth;
    const mm = await MemoryManager.create(new SseStreamer(), { backend: 'webgpu' });
    const file = await GgufFile.fromUrl('/fixtures/llama-f32.gguf');
    const fine = mm.requirementFor(file, { contextLength: 128 });
    mm.setSimulatedLimits({ maxStorageBufferBindingSize: 128 });
    const narrow = mm.requirementFor(file, { contextLength: 128 });
    const answer = mm.canLoadModel('fx', narrow);
    const limits = mm.limits;
    mm.setSimulatedLimits(null);
    const back = mm.requirementFor(file, { contextLength: 128 });
    let bad = null;
    try { mm.setSimulatedLimits({}); } catch (e) { bad = e.code; }
    return { fine: fine.problems, narrow: narrow.problems, answer, back: back.problems, bad, limits };
  });
  assert.deepEqual(out.fine, []);
  assert.ok(out.narrow.length > 0);
  const first = out.narrow[0];
  assert.equal(first.limit.kind, 'tensorOverBindingLimit', JSON.stringify(first));
  assert.equal(first.limit.limitBytes, 128);
  assert.match(first.message, /^Tensor \S+ needs a \d+ B binding but this GPU allows 128 B$/);
  assert.equal(out.limits.maxStorageBufferBindingSize, 128);
  assert.equal(out.answer.can, false);
  assert.equal(out.answer.fitsAfterEviction, false);
  assert.equal(out.answer.reason, first.message);
  assert.deepEqual(out.back, []);
  assert.equal(out.bad, 'INVALID_ARGUMENT');
});
