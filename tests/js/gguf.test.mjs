// GGUF in the browser, on real model files served over real HTTP: header first
// through Range requests, the no-Range fallback with progress, typed download
// errors, bit-exact decoding against gguf-py, and tokenizers against llama.cpp.
// Needs the models and goldens from `./run test` (tools/fetch_models.sh,
// tools/gguf_golden.py); the server mounts them at /models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openHarness, ROOT } from './harness.mjs';

const MODELS_DIR = process.env.HEARTH_MODELS_DIR || join(ROOT, 'models');
const MODELS = ['smollm2-135m-instruct-q4_1', 'gemma-3-270m-q4_k_m', 'qwen2.5-coder-0.5b-instruct'];

function tsv(path) {
  return readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
}

let h;
before(async () => {
  for (const m of MODELS) statSync(join(MODELS_DIR, `${m}.gguf`)); // fail early and clearly
  h = await openHarness();
});
after(async () => { await h?.close(); });

const stats = () => h.page.evaluate(async () => (await fetch('/__test/stats')).json());

for (const model of MODELS) {
  test(`${model}: the header comes through Range requests and matches gguf-py`, async () => {
    const key = `/models/${model}.gguf`;
    const before = (await stats())[key] || 0;
    const got = await h.page.evaluate(async (url) => {
      const f = await window.hearth.GgufFile.fromUrl(url);
      return { tensors: f.tensors(), fileBytes: f.fileBytes, supportsRange: f.supportsRange, version: f.version, arch: f.architecture, tokens: f.metadata('tokenizer.ggml.tokens').length };
    }, `/models/${model}.gguf`);
    const sent = ((await stats())[key] || 0) - before;
    const size = statSync(join(MODELS_DIR, `${model}.gguf`)).size;
    assert.equal(got.fileBytes, size);
    assert.equal(got.supportsRange, true);
    assert.equal(got.version, 3);
    assert.ok(sent < size / 10, `only the header was downloaded (${sent} of ${size} bytes)`);
    const expected = tsv(join(MODELS_DIR, 'golden', model, 'tensors.tsv'));
    assert.equal(got.tensors.length, expected.length);
    const byName = new Map(got.tensors.map((t) => [t.name, t]));
    for (const [name, , type, dims, offset, bytes] of expected) {
      const t = byName.get(name);
      assert.ok(t, name);
      assert.equal(t.type, type, name);
      assert.deepEqual(t.dims, dims.split(',').map(Number), name);
      assert.equal(t.offset, Number(offset), name);
      assert.equal(t.size, Number(bytes), name);
    }
  });
}

test('tensors decode bit-exactly like gguf-py in the browser', async () => {
  let checked = 0;
  for (const model of MODELS) {
    const goldens = tsv(join(MODELS_DIR, 'golden', model, 'goldens.tsv'));
    const sizes = new Map(tsv(join(MODELS_DIR, 'golden', model, 'tensors.tsv')).map((r) => [r[0], r[3].split(',').reduce((a, b) => a * Number(b), 1)]));
    // Whole-tensor decodes of the big embeddings would take minutes on this CPU; the small ones cover every type.
    const picks = goldens.filter((g) => sizes.get(g[0]) <= 1 << 21);
    const mismatches = await h.page.evaluate(async ({ model, picks }) => {
      const f = await window.hearth.GgufFile.fromUrl(`/models/${model}.gguf`);
      const out = [];
      for (const [name, , , , elements, , file] of picks) {
        const got = await f.dequantize(name);
        const want = new Float32Array(await (await fetch(`/models/golden/${model}/${file}`)).arrayBuffer());
        const g = new Uint32Array(got.buffer, 0, Number(elements));
        const w = new Uint32Array(want.buffer);
        const bad = w.findIndex((bits, i) => bits !== g[i]);
        if (w.length !== Number(elements) || bad >= 0) out.push(`${name}: first differing element ${bad}`);
      }
      return out;
    }, { model, picks });
    assert.deepEqual(mismatches, []);
    checked += picks.length;
  }
  assert.ok(checked >= 12, `checked ${checked} tensors`);
});

test('a server without Range support: the file streams once, with progress, and reads come from memory', async () => {
  const model = 'smollm2-135m-instruct-q4_1';
  const r = await h.page.evaluate(async (url) => {
    const events = [];
    const f = await window.hearth.GgufFile.fromUrl(url, { onProgress: (p) => events.push(p) });
    const bytes = await f.readTensor('output_norm.weight');
    return { events, supportsRange: f.supportsRange, fileBytes: f.fileBytes, tensorLen: bytes.length };
  }, `/__test/norange/models/${model}.gguf`);
  const size = statSync(join(MODELS_DIR, `${model}.gguf`)).size;
  assert.equal(r.supportsRange, false);
  assert.equal(r.fileBytes, size);
  assert.equal(r.tensorLen, 576 * 4);
  // One event per chunk as it arrives, at most one per percent.
  assert.ok(r.events.length >= 20 && r.events.length <= 102, `${r.events.length} progress events`);
  assert.ok(r.events.every((e, i) => e.phase === 'download' && e.total === size && (i === 0 || e.loaded > r.events[i - 1].loaded)));
  assert.equal(r.events.at(-1).loaded, size);
  assert.equal(r.events.at(-1).percent, 100);
});

test('a load from a URL takes its weights from one request for the rest of the file', async () => {
  // One request per tensor, or per few MB, costs a browser round trip each (~40 ms here), more
  // than the bytes take to arrive: the upload reads its tensors in file order from one download.
  const model = 'smollm2-135m-instruct-q4_1';
  const url = `/models/${model}.gguf`;
  const size = statSync(join(MODELS_DIR, `${model}.gguf`)).size;
  const dataOffset = await h.page.evaluate(async (url) => {
    window.__file = await window.hearth.GgufFile.fromUrl(url);
    return Math.min(...window.__file.tensors().map((t) => t.offset));
  }, url);
  const ranges = [];
  const onRequest = (r) => {
    if (new URL(r.url()).pathname === url) ranges.push(r.headers().range ?? 'none');
  };
  h.page.on('request', onRequest);
  let text;
  try {
    text = await h.page.evaluate(async () => {
      const { LanguageModel, SseStreamer } = window.hearth;
      const model = await LanguageModel.load(window.__file, new SseStreamer(), { backend: 'cpu', threads: 1 });
      try {
        return (await model.generate('The capital of France is', { maxTokens: 4, temperature: 0 })).text;
      } finally {
        model.dispose();
        delete window.__file;
      }
    });
  } finally {
    h.page.off('request', onRequest);
  }
  assert.deepEqual(ranges, [`bytes=${dataOffset}-${size - 1}`]);
  assert.ok(text.length > 0, 'the model generated from the streamed weights');
});

test('download() streams the tensor data once with progress; a Blob parses the same', async () => {
  const model = 'smollm2-135m-instruct-q4_1';
  const r = await h.page.evaluate(async (url) => {
    const f = await window.hearth.GgufFile.fromUrl(url);
    const events = [];
    await f.download({ onProgress: (p) => events.push(p.percent) });
    const a = await f.readTensor('blk.0.attn_q.weight');
    const blob = await (await fetch(url)).blob();
    const g = await window.hearth.GgufFile.fromBlob(blob);
    const b = await g.readTensor('blk.0.attn_q.weight');
    const same = a.length === b.length && a.every((x, i) => x === b[i]);
    return { events: events.length, last: events.at(-1), same, tensors: g.tensorCount, source: g.source };
  }, `/models/${model}.gguf`);
  assert.ok(r.events >= 20 && r.events <= 102, `${r.events} progress events`);
  assert.equal(r.last, 100);
  assert.equal(r.same, true);
  assert.equal(r.tensors, 272);
  assert.equal(r.source, 'blob');
});

test('download failures are typed errors with the URL and status', async () => {
  const r = await h.page.evaluate(async (foreign) => {
    const { GgufFile, DownloadError, CancelledError, ModelFormatError } = window.hearth;
    const attempt = async (url, options) => {
      try { await GgufFile.fromUrl(url, options); return 'resolved'; } catch (e) {
        return { name: e.name, code: e.code, status: e.status, url: e.url, message: e.message,
          download: e instanceof DownloadError, cancelled: e instanceof CancelledError, format: e instanceof ModelFormatError };
      }
    };
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    return {
      notFound: await attempt('/models/missing.gguf'),
      serverError: await attempt('/__test/status/503'),
      truncated: await attempt('/__test/truncate/models/smollm2-135m-instruct-q4_1.gguf'),
      cors: await attempt(`${foreign}/index.html`),
      aborted: await attempt('/__test/slow/models/smollm2-135m-instruct-q4_1.gguf', { signal: controller.signal }),
      notGguf: await attempt('/index.html'),
    };
  }, h.foreignOrigin);
  assert.equal(r.notFound.download, true);
  assert.equal(r.notFound.status, 404);
  assert.equal(r.notFound.code, 'HTTP_STATUS');
  assert.match(r.notFound.url, /missing\.gguf$/);
  assert.match(r.notFound.message, /HTTP 404/);
  assert.equal(r.serverError.status, 503);
  assert.equal(r.truncated.code, 'TRUNCATED_BODY');
  assert.equal(r.truncated.download, true);
  assert.equal(r.cors.code, 'NETWORK_ERROR');
  assert.match(r.cors.message, /CORS/);
  assert.equal(r.aborted.cancelled, true);
  assert.equal(r.aborted.name, 'CancelledError');
  assert.equal(r.notGguf.format, true);
  assert.equal(r.notGguf.code, 'GGUF_BAD_MAGIC');
});

for (const model of MODELS) {
  test(`${model}: the tokenizer matches llama.cpp in the browser`, async () => {
    const golden = JSON.parse(readFileSync(join(ROOT, 'tests', 'golden', 'tokenizer', `${model}.json`), 'utf8'));
    const r = await h.page.evaluate(async ({ model, golden }) => {
      const { GgufFile, Tokenizer } = window.hearth;
      const t = Tokenizer.fromGguf(await GgufFile.fromUrl(`/models/${model}.gguf`));
      const bad = [];
      for (const c of golden.cases) {
        const ids = Array.from(t.encode(c.text, { addSpecial: golden.add_special, parseSpecial: c.parse_special }));
        if (JSON.stringify(ids) !== JSON.stringify(c.ids)) bad.push({ text: c.text, ids, want: c.ids });
      }
      const chat = t.applyChatTemplate([{ role: 'user', content: 'Hi!' }]);
      let badId = null;
      try { t.decode([t.vocabSize]); } catch (e) { badId = e.name; }
      return { bad, cases: golden.cases.length, chat, badId };
    }, { model, golden });
    assert.deepEqual(r.bad, []);
    assert.ok(r.cases >= 10);
    assert.match(r.chat, /Hi!/);
    assert.equal(r.badId, 'InvalidInputError');
  });
}
