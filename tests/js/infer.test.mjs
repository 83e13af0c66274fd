// Real inference in the browser: the npm-style package loads a real GGUF over HTTP onto
// WebGPU (SwiftShader here) and generates. Greedy tokens are compared with llama.cpp's
// (tests/golden/generate, from tools/llamacpp_generate.mjs) up to the first step where
// llama.cpp itself had a near tie (top-2 within 0.35 nats or 3% probability): past such a step
// any two correct implementations may part ways (see tests/infer_real_models.rs).
// `HEARTH_FULL=1` (./run test --full) adds gemma-3-270m and Qwen2.5-0.5B.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';

const MODELS = ['smollm2-135m-instruct-q4_1'];
if (process.env.HEARTH_FULL === '1') MODELS.push('gemma-3-270m-q4_k_m', 'qwen2.5-coder-0.5b-instruct');

/** Steps before llama.cpp's first near tie. */
function decisiveSteps(c) {
  for (let s = 0; s < c.top5.length; s++) {
    const [a, b] = c.top5[s];
    if (a[1] - b[1] < 0.35 || Math.exp(a[1]) - Math.exp(b[1]) < 0.03) return s;
  }
  return c.generated_ids.length;
}

/** SmolLM2's first golden case ("The capital of France is") and its steps before a near tie. */
function smolFrance() {
  const golden = JSON.parse(readFileSync(join(ROOT, 'tests/golden/generate/smollm2-135m-instruct-q4_1.json'), 'utf8'));
  const france = golden.cases[0];
  return { france, n: decisiveSteps(france) };
}

let h;
before(async () => { h = await openHarness(); });
after(async () => { await h?.close(); });

for (const stem of MODELS) {
  test(`${stem}: greedy tokens on WebGPU equal llama.cpp's up to its first near tie`, async () => {
    const golden = JSON.parse(readFileSync(join(ROOT, 'tests/golden/generate', `${stem}.json`), 'utf8'));
    const cases = golden.cases.slice(0, process.env.HEARTH_FULL === '1' ? 4 : 2);
    // Tokens past llama.cpp's first near tie are not compared, so they are not generated either.
    const lengths = cases.map((c) => Math.min(c.generated_ids.length, decisiveSteps(c) + 1));
    const out = await h.page.evaluate(async ({ url, cases, lengths }) => {
      const { GgufFile, LanguageModel, SseStreamer, Tokenizer } = window.hearth;
      const streamer = new SseStreamer();
      const events = [];
      streamer.subscribe((e) => events.push({ type: e.type, data: e.data }));
      const file = await GgufFile.fromUrl(url);
      const model = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 256, key: 'm' });
      const tok = Tokenizer.fromGguf(file);
      const results = [];
      for (const [i, c] of cases.entries()) {
        // The golden's prompt ids are llama.cpp's tokenization of the prompt text; ours must agree.
        const ids = Array.from(tok.encode(c.prompt, { addSpecial: true, parseSpecial: true }));
        const streamed = [];
        const r = await model.generate(c.prompt, {
          maxTokens: lengths[i], onToken: (t) => { streamed.push(t.tokenId); },
        });
        results.push({ ids, r, streamed });
      }
      const info = model.info;
      model.dispose();
      return { results, info, events };
    }, { url: `/models/${stem}.gguf`, cases, lengths });
    assert.match(out.info.backend, /^webgpu/, 'ran on WebGPU');
    assert.ok(out.info.weightBytes <= 1.25 * out.info.fileBytes, `weights on the GPU ${out.info.weightBytes} B vs file ${out.info.fileBytes} B`);
    cases.forEach((c, i) => {
      const { ids, r, streamed } = out.results[i];
      assert.deepEqual(ids, c.prompt_ids, `${stem} case ${i}: prompt tokens`);
      const n = decisiveSteps(c);
      assert.deepEqual(r.generatedIds.slice(0, n), c.generated_ids.slice(0, n),
        `${stem} case ${i}: the first ${n} greedy tokens (text so far: ${JSON.stringify(r.text)})`);
      assert.deepEqual(streamed.filter((x) => x !== null), r.generatedIds, 'every token was streamed');
      assert.ok(r.ttftMs > 0);
      // A case whose first token is already past a near tie generates one token: no decode step.
      if (r.generatedIds.length > 1) assert.ok(r.decodeTokensPerSecond > 0);
      console.log(`${stem} case ${i}: ${n} decisive steps equal (${r.generatedIds.length} generated); ttft ${r.ttftMs.toFixed(0)} ms, prefill ${r.prefillTokensPerSecond.toFixed(1)} tok/s, decode ${r.decodeTokensPerSecond.toFixed(2)} tok/s`);
    });
    const infos = out.events.filter((e) => e.type === 'info').map((e) => e.data);
    assert.ok(infos.includes('Loading model m...'), infos.join(' | '));
    assert.ok(infos.includes('Model m loaded successfully.'));
    const progress = out.events.filter((e) => e.type === 'progress' && e.data.phase === 'upload');
    assert.ok(progress.length >= 50, `upload progress at least every ~2% (${progress.length} events)`);
    assert.equal(progress.at(-1).data.percent, 100);
    const metrics = out.events.filter((e) => e.type === 'metrics');
    // One per 5% of the bytes, except inside a single large tensor (the 28 MB embedding).
    assert.ok(metrics.length >= 10, `metrics through the upload (${metrics.length})`);
    assert.ok(metrics.at(-1).data.usedBytes >= out.info.weightBytes, 'resident bytes grow to the weights');
    assert.ok(out.events.some((e) => e.type === 'token'));
    assert.ok(out.events.some((e) => e.type === 'done' && e.data.generatedTokens === lengths.at(-1)));
    // One stop-reason vocabulary: each `done` event says what its result says.
    const reasons = out.results.map(({ r }) => r.stopReason);
    assert.deepEqual(out.events.filter((e) => e.type === 'done').map((e) => e.data.stopReason), reasons);
    for (const reason of reasons) assert.ok(['eos', 'length'].includes(reason), reason);
  });
}

// The CPU engine multiplies with 8-bit activations (as llama.cpp's CPU does) and WebGPU in f32, so
// the two may part ways where llama.cpp itself had a near tie: both are held to llama.cpp's tokens
// up to that step.
test('the CPU fallback generates the same greedy tokens as WebGPU and llama.cpp up to its first near tie (SmolLM2)', async () => {
  const { france, n } = smolFrance();
  assert.equal(france.prompt, 'The capital of France is');
  assert.ok(n >= 4, `llama.cpp is decisive for ${n} steps`);
  const out = await h.page.evaluate(async () => {
    const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const run = async (backend) => {
      const m = await LanguageModel.load(file, new SseStreamer(), { backend, contextLength: 64 });
      const r = await m.generate('The capital of France is', { maxTokens: 6 });
      const b = m.info.backend;
      m.dispose();
      return { ids: r.generatedIds, backend: b, stopReason: r.stopReason };
    };
    // model.stream(): an async iterator; leaving the loop stops generation.
    const m = await LanguageModel.load(file, new SseStreamer(), { backend: 'cpu', contextLength: 64 });
    const seen = [];
    const s = m.stream('The capital of France is', { maxTokens: 20 });
    for await (const t of s) { seen.push(t.tokenId); if (seen.length === 3) break; }
    const streamed = await s.result;
    m.dispose();
    return { cpu: await run('cpu'), gpu: await run('webgpu'), seen, streamed };
  });
  assert.equal(out.cpu.backend, 'cpu');
  assert.deepEqual(out.cpu.ids.slice(0, n), france.generated_ids.slice(0, n), 'CPU: llama.cpp\'s decisive tokens');
  assert.deepEqual(out.gpu.ids.slice(0, n), france.generated_ids.slice(0, n), 'WebGPU: llama.cpp\'s decisive tokens');
  assert.equal(out.cpu.stopReason, 'length', 'maxTokens reached');
  assert.deepEqual(out.seen, out.cpu.ids.slice(0, 3), 'the iterator yields the greedy tokens');
  assert.equal(out.streamed.stopReason, 'cancelled');
  assert.ok(out.streamed.generatedIds.length <= 4, `stopped after the loop ended (${out.streamed.generatedIds.length} tokens)`);
});

// Every kernel family the adapter can run, forced by `kernels`, on the same real model: each
// generates llama.cpp's decisive greedy tokens, as the CPU engine does in the test above (the
// native tier holds every family's logits to the CPU engine's on lavapipe,
// tests/infer_gpu_families.rs). A family whose feature the adapter lacks is refused by name
// (SwiftShader has no `shader-f16`), and the families loaded after the refusal still run.
test('every kernel family the adapter has generates llama.cpp\'s decisive tokens on WebGPU; one it lacks is refused by name (SmolLM2)', async () => {
  const { france, n } = smolFrance();
  const out = await h.page.evaluate(async (n) => {
    const { GgufFile, LanguageModel, SseStreamer, initDevice } = window.hearth;
    const info = await initDevice(new SseStreamer(), 'webgpu');
    const features = { subgroup: !!info.adapter.subgroups, f16: !!info.adapter.shaderF16 };
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const runs = {};
    for (const kernels of ['f16', 'subgroup', 'rows', 'portable']) {
      try {
        const m = await LanguageModel.load(file, new SseStreamer(), { backend: 'webgpu', contextLength: 64, kernels });
        const r = await m.generate('The capital of France is', { maxTokens: n });
        runs[kernels] = { ids: r.generatedIds, backend: m.info.backend, decode: r.decodeTokensPerSecond };
        m.dispose();
      } catch (e) {
        runs[kernels] = { error: { name: e.name, message: e.message } };
      }
    }
    return { runs, features };
  }, n);
  const needs = { subgroup: ['subgroup', 'subgroups'], f16: ['f16', 'shader-f16'] };
  let ran = 0;
  for (const [kernels, r] of Object.entries(out.runs)) {
    const [feature, name] = needs[kernels] || [null, null];
    if (feature && !out.features[feature]) {
      assert.equal(r.error?.name, 'InvalidInputError', `${kernels}: ${JSON.stringify(r)}`);
      assert.ok(r.error.message.includes(`'${name}'`), r.error.message);
      console.log(`kernels '${kernels}': refused (${r.error.message})`);
      continue;
    }
    assert.equal(r.error, undefined, `${kernels}: ${JSON.stringify(r.error)}`);
    assert.match(r.backend, /^webgpu/);
    assert.deepEqual(r.ids.slice(0, n), france.generated_ids.slice(0, n), `kernels '${kernels}': llama.cpp's ${n} decisive tokens`);
    console.log(`kernels '${kernels}': ${n} decisive tokens equal, decode ${r.decode.toFixed(2)} tok/s`);
    ran++;
  }
  assert.ok(ran >= 2, `rows and portable run on every adapter (${ran} ran)`);
});

// A GPU records a model's decode step once and replays it for every later token (a software
// adapter launches each step: replaying is slower there), so the browser tier forces it on to
// run the path a GPU takes: the same decisive tokens, and no fallback said on the status stream.
test('decode steps recorded once and replayed on WebGPU give llama.cpp\'s decisive tokens (SmolLM2)', async () => {
  const { france, n } = smolFrance();
  const out = await h.page.evaluate(async (n) => {
    const { GgufFile, LanguageModel, SseStreamer, initDevice } = window.hearth;
    const info = await initDevice(new SseStreamer(), 'webgpu');
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const runs = [];
    // The rows family (a software adapter's) and the one a GPU with subgroups picks.
    for (const kernels of ['rows', info.adapter.subgroups ? 'subgroup' : 'portable']) {
      const streamer = new SseStreamer();
      const infos = [];
      streamer.subscribe((e) => { if (e.type === 'info') infos.push(e.data); });
      const m = await LanguageModel.load(file, streamer, { backend: 'webgpu', contextLength: 64, kernels, decodeGraphs: true });
      const r = await m.generate('The capital of France is', { maxTokens: n });
      const again = await m.generate('The capital of France is', { maxTokens: n });
      runs.push({ kernels, ids: r.generatedIds, again: again.generatedIds, graphs: m.info.decodeGraphs, infos });
      m.dispose();
    }
    const off = await LanguageModel.load(file, new SseStreamer(), { backend: 'webgpu', contextLength: 64, decodeGraphs: false });
    const offGraphs = off.info.decodeGraphs;
    off.dispose();
    return { runs, offGraphs };
  }, n);
  for (const r of out.runs) {
    assert.equal(r.graphs, true, `${r.kernels}: info.decodeGraphs`);
    assert.deepEqual(r.ids.slice(0, n), france.generated_ids.slice(0, n), `${r.kernels}: llama.cpp's ${n} decisive tokens, replayed`);
    assert.deepEqual(r.again, r.ids, `${r.kernels}: the second generation replays the same steps`);
    assert.ok(!r.infos.some((m) => /launched one by one/.test(m)), `${r.kernels}: ${r.infos.join(' | ')}`);
    console.log(`decodeGraphs with kernels '${r.kernels}': ${n} decisive tokens equal, twice`);
  }
  assert.equal(out.offGraphs, false);
});

test('a half-precision KV cache on WebGPU holds half the cache bytes and keeps llama.cpp\'s decisive tokens (SmolLM2)', async () => {
  const { france, n } = smolFrance();
  const out = await h.page.evaluate(async (n) => {
    const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const run = async (kvCache) => {
      const m = await LanguageModel.load(file, new SseStreamer(), { backend: 'webgpu', contextLength: 64, kvCache });
      const r = await m.generate('The capital of France is', { maxTokens: n });
      const { backend, residentBytes, nLayer } = m.info;
      m.dispose();
      return { ids: r.generatedIds, backend, residentBytes, nLayer };
    };
    return { f32: await run('f32'), f16: await run('f16') };
  }, n);
  assert.match(out.f16.backend, /^webgpu/);
  // SmolLM2's cache rows: 3 KV heads of 64, keys and values, 64 positions, every layer.
  const f32Cache = out.f32.nLayer * 2 * 64 * 3 * 64 * 4;
  assert.equal(out.f32.residentBytes - out.f16.residentBytes, f32Cache / 2, 'the cache takes half the bytes');
  assert.deepEqual(out.f16.ids.slice(0, n), france.generated_ids.slice(0, n), 'llama.cpp\'s decisive tokens');
});

test('bad input: unsupported architecture, context overflow and bad settings are typed errors', async () => {
  const out = await h.page.evaluate(async () => {
    const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
    const grab = async (f) => { try { await f(); return null; } catch (e) { return { name: e.name, code: e.code, message: e.message }; } };
    const file = await GgufFile.fromUrl('/models/smollm2-135m-instruct-q4_1.gguf');
    const m = await LanguageModel.load(file, new SseStreamer(), { backend: 'cpu', contextLength: 16 });
    const overflow = await grab(() => m.generate('The capital of France is', { maxTokens: 64 }));
    const badTemp = await grab(() => m.generate('Hi', { maxTokens: 2, temperature: -1 }));
    const after = await m.generate('The capital of France is', { maxTokens: 2 });
    m.dispose();
    return { overflow, badTemp, after: after.generatedIds.length };
  });
  assert.equal(out.overflow.name, 'InvalidInputError');
  assert.equal(out.overflow.code, 'CONTEXT_OVERFLOW');
  assert.match(out.overflow.message, /context of 16/);
  assert.equal(out.badTemp.name, 'InvalidInputError');
  assert.match(out.badTemp.message, /temperature/);
  assert.equal(out.after, 2, 'the model still works after the errors');
});
