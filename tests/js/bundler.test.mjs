// The package as a bundler takes it: tests/vite-consumer imports `@hearth-llm/hearth` by its npm
// name, `vite build` bundles it (the wasm, found through wasm-bindgen's
// `new URL('hearth_bg.wasm', import.meta.url)`, becomes a hashed asset), and the BUILT dist/ is
// served without COOP/COEP, as most hosts serve a page, then run in headless Chromium on a real
// model fetched from the test server. Greedy tokens are held to llama.cpp's (tests/golden) up to
// its first near tie, so a bundle that loads but computes wrongly fails too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from '../../tools/node_modules/playwright-core/index.mjs';
import { startServer } from '../../tools/serve.mjs';
import { CHROMIUM_ARGS, ROOT } from './harness.mjs';

const CONSUMER = join(ROOT, 'tests', 'vite-consumer');
const DIST = join(CONSUMER, 'dist');

let server;
let browser;
before(async () => {
  if (!existsSync(join(CONSUMER, 'node_modules', 'vite'))) {
    throw new Error('tests/vite-consumer has no node_modules: run ./run test (or npm ci there)');
  }
  // Always from the current pkg/: `vite build` takes seconds.
  execFileSync(join(CONSUMER, 'node_modules', '.bin', 'vite'), ['build', '--logLevel', 'warn'], { cwd: CONSUMER, stdio: 'inherit' });
  server = await startServer({
    root: DIST,
    port: 0,
    isolated: false,
    mounts: { '/models': process.env.HEARTH_MODELS_DIR || join(ROOT, 'models') },
  });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
after(async () => {
  await browser?.close();
  server?.closeAllConnections();
  await new Promise((ok) => (server ? server.close(ok) : ok()));
});

/** Steps before llama.cpp's first near tie (as tests/js/infer.test.mjs). */
function decisiveSteps(c) {
  for (let s = 0; s < c.top5.length; s++) {
    const [a, b] = c.top5[s];
    if (a[1] - b[1] < 0.35 || Math.exp(a[1]) - Math.exp(b[1]) < 0.03) return s;
  }
  return c.generated_ids.length;
}

test('vite build: the wasm is a hashed asset of dist/, nothing is left pointing into node_modules', () => {
  const assets = readdirSync(join(DIST, 'assets'));
  const wasm = assets.filter((f) => /^hearth_bg-[\w-]+\.wasm$/.test(f));
  assert.equal(wasm.length, 1, `one bundled wasm among ${assets.join(', ')}`);
  const js = assets.filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(DIST, 'assets', f), 'utf8')).join('\n');
  assert.ok(js.includes(wasm[0]), 'the bundle loads the wasm by its emitted name');
  assert.ok(!/node_modules|@hearth-llm\/hearth/.test(js), 'no bare specifier or node_modules path survives');
  assert.ok(assets.some((f) => /^hearth-worker-[\w-]+\.js$/.test(f)), 'the worker script is emitted');
});

// Worker mode is one query parameter of the app (`ModelManager.create({ worker: true })`).
for (const worker of [true, false]) test(`the built page${worker ? ' in worker mode' : ' on the main thread'}, served without COOP/COEP, loads SmolLM2 on the CPU and generates llama.cpp's greedy tokens`, async () => {
  const golden = JSON.parse(readFileSync(join(ROOT, 'tests/golden/generate/smollm2-135m-instruct-q4_1.json'), 'utf8'));
  const c = golden.cases[0];
  const n = decisiveSteps(c);
  assert.ok(n >= 2, `llama.cpp is decisive for ${n} steps`);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const requests = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const origin = `http://127.0.0.1:${server.address().port}`;
  const q = new URLSearchParams({
    url: '/models/smollm2-135m-instruct-q4_1.gguf', arch: 'llama', quant: 'Q4_1', bytes: '98362432',
    backend: 'cpu', prompt: c.prompt, tokens: String(n), ...(worker ? { worker: '1' } : {}),
  });
  await page.goto(`${origin}/?${q}`);
  await page.waitForFunction(() => document.body.dataset.state, null, { timeout: 300_000 });
  const out = await page.evaluate(() => window.outcome);
  await page.close();
  assert.equal(out.error, undefined, JSON.stringify(out.error));
  assert.deepEqual(errors, []);
  assert.equal(out.crossOriginIsolated, false, 'served as most hosts serve: not cross-origin isolated');
  assert.equal(out.backend, 'cpu');
  assert.deepEqual(out.ids, c.generated_ids.slice(0, n), 'llama.cpp\'s decisive greedy tokens');
  assert.equal(out.result.generatedTokens, n);
  assert.ok(requests.some((p) => /^\/assets\/hearth_bg-[\w-]+\.wasm$/.test(p)), 'the wasm came from the bundle\'s assets');
  assert.ok(!requests.some((p) => p.includes('node_modules')), 'nothing fetched from node_modules');
  // Says why the CPU engine runs on one thread here.
  assert.ok(out.infos.some((m) => /one thread/.test(m) && /cross-origin isolated/.test(m)),
    `a threads message among: ${out.infos.join(' | ')}`);
});
