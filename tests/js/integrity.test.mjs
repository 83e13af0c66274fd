// Integrity in the browser. The model cache on real OPFS: every file is stored with its SHA-256,
// reused only when its bytes still hash to it, and a corrupted or truncated copy is detected
// before use, deleted, and reported as an IntegrityError; nothing is loaded. Tiny random-weight
// fixtures (tools/make_fixtures.py) keep each load to a second. And the memory budget's adapter
// facts are those of the adapter the device runs on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';

const FIXTURE = 'llama-q4_0.gguf';
const BYTES = readFileSync(join(ROOT, '.cache', 'fixtures', FIXTURE));
const SHA256 = createHash('sha256').update(BYTES).digest('hex');
const ENTRY = { key: 'fx-int', url: `/fixtures/${FIXTURE}`, arch: 'llama', quant: 'Q4_0', fileBytes: BYTES.length, contextLength: 128 };

let h;
before(async () => {
  h = await openHarness();
  await h.page.evaluate((entry) => {
    // A fresh manager (a page reload, as far as loading goes) with `entry` registered.
    window.fresh = async (extra = {}) => {
      const { ModelManager } = window.hearth;
      const manager = await ModelManager.create({ backend: 'webgpu', catalog: [], cache: true });
      manager.registerModel({ ...entry, ...extra });
      return manager;
    };
    window.plain = (e) => ({ name: e.name, code: e.code, message: e.message, ...Object.fromEntries(Object.entries(e)) });
    window.cacheDir = async () => (await navigator.storage.getDirectory()).getDirectoryHandle('hearth-models');
    // Rewrites part of a cached file in place, as a disk fault or another tab might.
    window.damage = async (name, how) => {
      const handle = await (await window.cacheDir()).getFileHandle(name);
      const size = (await handle.getFile()).size;
      const w = await handle.createWritable({ keepExistingData: true });
      if (how.truncateTo !== undefined) await w.truncate(how.truncateTo);
      if (how.flipAt !== undefined) {
        const at = how.flipAt < 0 ? size + how.flipAt : how.flipAt;
        const old = new Uint8Array(await (await handle.getFile()).slice(at, at + 1).arrayBuffer());
        await w.write({ type: 'write', position: at, data: new Uint8Array([old[0] ^ 0x10]) });
      }
      await w.close();
    };
    window.state = (manager) => ({ loaded: manager.loadedModels(), registered: manager.memoryManager.getStats().registeredBytes });
  }, ENTRY);
});
after(async () => {
  assert.deepEqual(h?.pageErrors.map(String) ?? [], []);
  await h?.close();
});

test('an entry without a digest is hashed while stored; cachedModels() reports it; the good copy is reused', async () => {
  const out = await h.page.evaluate(async () => {
    const first = await window.fresh();
    await first.clearCache();
    await first.switchModel('fx-int');
    const listed = (await first.cachedModels()).filter((c) => c.key === 'fx-int');
    const names = [];
    for await (const [name] of (await window.cacheDir()).entries()) names.push(name);
    const sent = async () => (await fetch('/__test/stats').then((r) => r.json()))['/fixtures/llama-q4_0.gguf'] || 0;
    const before = await sent();
    const second = await window.fresh();
    const info = await second.switchModel('fx-int');
    return { listed, names, info: info.key, network: (await sent()) - before };
  });
  assert.equal(out.listed.length, 1, JSON.stringify(out.listed));
  assert.equal(out.listed[0].sha256, SHA256);
  assert.equal(out.listed[0].bytes, BYTES.length);
  // The digest's record lies beside the file and is not listed as a model.
  assert.ok(out.names.includes(`${out.listed[0].file}.sha256`), out.names.join(', '));
  assert.equal(out.info, 'fx-int');
  assert.equal(out.network, 0, 'the verified copy was reused without the network');
});

for (const [what, how, actualBytes] of [
  ['a flipped byte in the tensor data', { flipAt: -100 }, BYTES.length],
  ['a flipped byte in the header', { flipAt: 9 }, BYTES.length],
  ['a truncated file', { truncateTo: BYTES.length - 4096 }, BYTES.length - 4096],
]) {
  test(`a cached file with ${what} is detected before use, deleted, and an IntegrityError; nothing is loaded`, async () => {
    const out = await h.page.evaluate(async (how) => {
      const first = await window.fresh();
      await first.clearCache();
      await first.switchModel('fx-int');
      const [cached] = (await first.cachedModels()).filter((c) => c.key === 'fx-int');
      await window.damage(cached.file, how);
      const second = await window.fresh();
      let error = null;
      try {
        await second.switchModel('fx-int');
      } catch (e) {
        error = window.plain(e);
        error.isIntegrity = e instanceof window.hearth.IntegrityError;
      }
      const after = (await second.cachedModels()).filter((c) => c.key === 'fx-int');
      // The next load downloads a good copy again.
      const third = await window.fresh();
      const again = await third.switchModel('fx-int');
      return { error, state: window.state(second), after, again: again.key, file: cached.file };
    }, how);
    assert.ok(out.error, 'the load failed');
    assert.equal(out.error.name, 'IntegrityError');
    assert.ok(out.error.isIntegrity);
    assert.equal(out.error.code, 'INTEGRITY_MISMATCH');
    assert.equal(out.error.file, out.file);
    assert.equal(out.error.expectedSha256, SHA256);
    assert.notEqual(out.error.actualSha256, SHA256);
    assert.match(out.error.actualSha256, /^[0-9a-f]{64}$/);
    assert.equal(out.error.actualBytes, actualBytes);
    assert.equal(out.error.modelKey, 'fx-int');
    assert.ok(out.error.message.includes(out.file) && out.error.message.includes(SHA256), out.error.message);
    assert.deepEqual(out.state, { loaded: [], registered: 0 }, 'nothing loaded, memory at the baseline');
    assert.deepEqual(out.after, [], 'the damaged copy was deleted');
    assert.equal(out.again, 'fx-int');
  });
}

test('a download that differs from the catalog digest is never cached nor loaded', async () => {
  const wrong = '0'.repeat(64);
  const out = await h.page.evaluate(async (wrong) => {
    const manager = await window.fresh({ sha256: wrong });
    await manager.clearCache();
    let error = null;
    try {
      await manager.switchModel('fx-int');
    } catch (e) {
      error = window.plain(e);
    }
    const names = [];
    for await (const [name] of (await window.cacheDir()).entries()) names.push(name);
    return { error, state: window.state(manager), names };
  }, wrong);
  assert.equal(out.error?.name, 'IntegrityError');
  assert.equal(out.error.code, 'INTEGRITY_MISMATCH');
  assert.equal(out.error.expectedSha256, wrong);
  assert.equal(out.error.actualSha256, SHA256);
  assert.deepEqual(out.state, { loaded: [], registered: 0 });
  assert.deepEqual(out.names.filter((n) => n.startsWith('fx-int-')), [], 'no partial or unverified file');
  const ok = await h.page.evaluate(async (sha256) => {
    const manager = await window.fresh({ sha256 });
    await manager.clearCache();
    const info = await manager.switchModel('fx-int');
    return { key: info.key, listed: (await manager.cachedModels()).filter((c) => c.key === 'fx-int').map((c) => c.sha256) };
  }, SHA256);
  assert.deepEqual(ok, { key: 'fx-int', listed: [SHA256] });
});

test('too little storage (navigator.storage.estimate()) is a DownloadError STORAGE_QUOTA before any byte is written', async () => {
  const out = await h.page.evaluate(async () => {
    const manager = await window.fresh();
    await manager.clearCache();
    const real = navigator.storage.estimate;
    navigator.storage.estimate = async () => ({ quota: 1_000_000, usage: 0 });
    let error = null;
    try {
      await manager.switchModel('fx-int');
    } catch (e) {
      error = window.plain(e);
    } finally {
      navigator.storage.estimate = real;
    }
    const names = [];
    for await (const [name] of (await window.cacheDir()).entries()) names.push(name);
    return { error, names, state: window.state(manager) };
  });
  assert.equal(out.error?.name, 'DownloadError', JSON.stringify(out.error));
  assert.equal(out.error.code, 'STORAGE_QUOTA');
  assert.equal(out.error.requiredBytes, BYTES.length);
  assert.equal(out.error.availableBytes, 1_000_000);
  assert.deepEqual(out.names.filter((n) => n.startsWith('fx-int-')), [], 'no partial file');
  assert.deepEqual(out.state, { loaded: [], registered: 0 });
});

test('the adapter facts are those of the device in use, isFallbackAdapter included', async () => {
  const out = await h.page.evaluate(async () => {
    const { initDevice, MemoryManager, SseStreamer } = window.hearth;
    const device = await initDevice(new SseStreamer(), 'webgpu');
    const js = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const jsFallback = js.info?.isFallbackAdapter ?? js.isFallbackAdapter ?? null;
    const mm = await MemoryManager.create(new SseStreamer(), { backend: 'webgpu' });
    return { adapter: device.adapter, facts: mm.adapter, budget: mm.budget, jsFallback, jsDescription: js.info?.description ?? '' };
  });
  console.log('adapter in use:', JSON.stringify(out.adapter), 'browser says fallback:', out.jsFallback);
  assert.equal(typeof out.adapter.isFallbackAdapter, 'boolean');
  if (out.jsFallback !== null) assert.equal(out.adapter.isFallbackAdapter, out.jsFallback);
  // The budget reads the same adapter's facts.
  assert.equal(out.facts.isFallbackAdapter, out.adapter.isFallbackAdapter);
  assert.equal(out.facts.vendor, out.adapter.vendor);
  assert.equal(out.facts.description, out.adapter.description);
  assert.equal(out.adapter.description, out.jsDescription);
  // SwiftShader is planned as a software adapter, by its name or its fallback flag.
  assert.equal(out.budget.adapterClass, 'cpu');
});
