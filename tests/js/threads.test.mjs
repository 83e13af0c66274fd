// The CPU engine on several threads in headless Chromium: on the (cross-origin isolated) test page
// a load with `threads: 2` splits every large product with one shard Worker and gives the 1-thread
// run's greedy tokens exactly (same kernels, same rows), reports `threads: 2`, and its dispose
// terminates the shard Worker; worker mode starts its shards from inside its own Worker; an
// invalid count is an InvalidInputError naming `threads`; a page without COOP/COEP runs on one
// thread and says why on the status stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';
import { startServer } from '../../tools/serve.mjs';
import { catalog } from './catalog.mjs';

const SMOLLM2 = '/models/smollm2-135m-instruct-q4_1.gguf';
const PROMPT = 'Once upon a time';
const TOKENS = 24;

let h;
before(async () => {
  h = await openHarness();
  await h.page.evaluate(() => {
    window.loadCpu = async (url, options) => {
      const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
      const streamer = new SseStreamer();
      const infos = [];
      streamer.subscribe((e) => { if (e.type === 'info') infos.push(e.data); });
      const file = await GgufFile.fromUrl(url);
      const model = await LanguageModel.load(file, streamer, { backend: 'cpu', contextLength: 256, ...options });
      return { model, infos };
    };
    window.plain = (e) => ({ name: e?.name, code: e?.code, message: String(e?.message ?? e), field: e?.field });
  });
});
after(async () => {
  assert.deepEqual(h?.pageErrors.map(String) ?? [], []);
  await h?.close();
});

// Shard workers run hearth-worker.js (the one worker script); no worker-mode Worker lives while
// this is counted.
const shardWorkers = () => h.page.workers().filter((w) => /hearth-worker\.js/.test(w.url())).length;

test('threads: 2 on an isolated page gives the 1-thread greedy tokens bit for bit, reports 2, and dispose ends the shard worker', async () => {
  assert.equal(await h.page.evaluate(() => self.crossOriginIsolated), true, 'the test page is cross-origin isolated');
  const before = shardWorkers();
  const one = await h.page.evaluate(async ({ url, prompt, tokens }) => {
    const { model, infos } = await window.loadCpu(url, { threads: 1 });
    const r = await model.generate(prompt, { maxTokens: tokens, temperature: 0, ignoreEos: true });
    const threads = model.info.threads;
    model.dispose();
    return { ids: r.generatedIds, threads, infos };
  }, { url: SMOLLM2, prompt: PROMPT, tokens: TOKENS });
  assert.equal(one.threads, 1);
  assert.ok(one.infos.some((m) => /runs smollm2|runs llama/.test(m) && /one thread: one thread was asked for/.test(m)), one.infos.join(' | '));
  await h.page.evaluate(async (url) => {
    const { model, infos } = await window.loadCpu(url, { threads: 2 });
    window.split = { model, infos };
  }, SMOLLM2);
  // Playwright learns of a new Worker through an event: give it a moment.
  const seen = Date.now() + 10_000;
  while (shardWorkers() < before + 1 && Date.now() < seen) await new Promise((r) => setTimeout(r, 100));
  assert.equal(shardWorkers(), before + 1, 'one shard worker runs while the model lives');
  const two = await h.page.evaluate(async ({ prompt, tokens }) => {
    const { model, infos } = window.split;
    const r = await model.generate(prompt, { maxTokens: tokens, temperature: 0, ignoreEos: true });
    const again = await model.generate(prompt, { maxTokens: 4, temperature: 0, ignoreEos: true, cachePrompt: false });
    return { ids: r.generatedIds, again: again.generatedIds, threads: model.info.threads, infos, resident: model.info.residentBytes, weights: model.info.weightBytes };
  }, { prompt: PROMPT, tokens: TOKENS });
  assert.equal(two.threads, 2);
  assert.ok(two.infos.some((m) => /on 2 threads: each large matrix product is split across this thread and 1 shard worker/.test(m)), two.infos.join(' | '));
  assert.equal(two.ids.length, TOKENS);
  assert.deepEqual(two.ids, one.ids, 'the same greedy tokens as on one thread');
  assert.deepEqual(two.again, one.ids.slice(0, 4));
  assert.ok(two.resident >= two.weights, 'the shards\' rows are counted in the resident bytes');
  await h.page.evaluate(() => { window.split.model.dispose(); window.split = null; });
  const deadline = Date.now() + 10_000;
  while (shardWorkers() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.equal(shardWorkers(), before, 'dispose terminated the shard worker');
});

test('a thread count outside 1..16 or not whole is an InvalidInputError naming threads', async () => {
  const errors = await h.page.evaluate(async (url) => {
    const out = [];
    for (const threads of [0, 17, 1.5, -2]) {
      try {
        const { model } = await window.loadCpu(url, { threads });
        model.dispose();
        out.push({ threads, loaded: true });
      } catch (e) {
        out.push({ threads, ...window.plain(e) });
      }
    }
    return out;
  }, '/fixtures/llama-q4_0.gguf');
  for (const e of errors) {
    assert.equal(e.name, 'InvalidInputError', JSON.stringify(e));
    assert.equal(e.code, 'INVALID_OPTIONS', JSON.stringify(e));
    assert.match(e.message, /threads must be a whole number from 1 to 16/, JSON.stringify(e));
  }
});

test('worker mode: the manager\'s Worker starts the shard worker itself and gives the same tokens', async () => {
  const out = await h.page.evaluate(async ({ catalog, prompt, tokens }) => {
    const { ModelManager, SseStreamer } = window.hearth;
    const run = async (worker) => {
      const streamer = new SseStreamer({ bufferSize: 4096 });
      const infos = [];
      streamer.subscribe((e) => { if (e.type === 'info') infos.push(e.data); });
      const manager = await ModelManager.create({ streamer, backend: 'cpu', catalog, cache: false, worker });
      await manager.init('smollm2-135m');
      const model = manager.getModel('smollm2-135m');
      const r = await model.generate(prompt, { maxTokens: tokens, temperature: 0, ignoreEos: true });
      const threads = model.info.threads;
      await manager.unload('smollm2-135m');
      await manager.terminate();
      return { ids: r.generatedIds, threads, infos: infos.filter((m) => /thread/.test(m)) };
    };
    return { main: await run(false), worker: await run(true) };
  }, { catalog: catalog('smollm2-135m'), prompt: PROMPT, tokens: 8 });
  assert.equal(out.main.threads, 2, JSON.stringify(out.main.infos));
  assert.equal(out.worker.threads, 2, JSON.stringify(out.worker.infos));
  assert.deepEqual(out.worker.ids, out.main.ids);
  assert.deepEqual(out.worker.infos, out.main.infos);
});

test('without COOP/COEP the CPU engine runs on one thread and says why', async () => {
  const server = await startServer({
    root: join(ROOT, 'www'),
    port: 0,
    isolated: false,
    mounts: { '/models': process.env.HEARTH_MODELS_DIR || join(ROOT, 'models'), '/fixtures': join(ROOT, '.cache', 'fixtures') },
  });
  const page = await h.page.context().browser().newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  try {
    await page.goto(`http://127.0.0.1:${server.address().port}/harness/`);
    await page.waitForFunction(() => document.body && document.body.dataset.ready === 'true', null, { timeout: 120_000 });
    const out = await page.evaluate(async (url) => {
      const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
      const streamer = new SseStreamer();
      const infos = [];
      streamer.subscribe((e) => { if (e.type === 'info') infos.push(e.data); });
      const model = await LanguageModel.load(await GgufFile.fromUrl(url), streamer, { backend: 'cpu', threads: 2 });
      const r = await model.generate('Hello', { maxTokens: 3, ignoreEos: true });
      const threads = model.info.threads;
      model.dispose();
      return { isolated: self.crossOriginIsolated, threads, infos, n: r.generatedTokens };
    }, '/fixtures/llama-q4_0.gguf');
    assert.equal(out.isolated, false);
    assert.equal(out.threads, 1);
    assert.equal(out.n, 3);
    assert.ok(out.infos.some((m) => /on one thread: threads need a cross-origin isolated page \(COOP\/COEP headers\), which this page is not/.test(m)), out.infos.join(' | '));
    assert.deepEqual(errors, []);
  } finally {
    await page.close();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  }
});
