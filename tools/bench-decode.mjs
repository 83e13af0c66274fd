#!/usr/bin/env node
// `./run bench decode`: Hearth against wllama (llama.cpp in wasm) in ONE headless Chromium
// session, on the same GGUF files, the same prompts and the same greedy token counts.
//
//   node tools/bench-decode.mjs [--models smollm2-135m,gemma-3-270m,qwen2.5-0.5b] [--tokens 32]
//        [--engines hearth-cpu,hearth-webgpu,wllama] [--json target/bench-decode.json]
//
// Engines (columns):
//   hearth cpu   x1 and xN   the package in pkg/ on its CPU backend with `LoadOptions.threads` 1 and N
//                            (N: the large products split across N-1 shard Workers; an xN cell says
//                            "n/a" if the engine reports fewer threads than asked).
//   hearth webgpu            the same package on WebGPU (SwiftShader in headless Chromium here).
//   wllama       x1 and xN   @wllama/wllama 3.13.0 from tools/node_modules, its wasm served from this
//                            server (`setCompat(null)`: no CDN), CPU only (`n_gpu_layers: 0`).
// N is the page's navigator.hardwareConcurrency. The page is cross-origin isolated (the server sends
// COOP same-origin + COEP require-corp), which wllama's multi-thread build needs.
//
// Per model and engine: load (fetch + parse + weights ready, ms), then the short prompt and the
// ~100-token prompt, each followed by `--tokens` greedy tokens with end-of-sequence ignored, so every
// engine generates the same count. Prefill tok/s is the long prompt's; decode tok/s the short one's
// (the long prompt's decode is in the JSON). Each engine reports its own timings (Hearth:
// GenerationResult; wllama: llama.cpp's `timings`), both measured from inside the engine. Nothing
// here is asserted: speed is reported, never tested.
import { chromium } from './node_modules/playwright-core/index.mjs';
import { startServer } from './serve.mjs';
import { CHROMIUM_ARGS, ROOT } from '../tests/js/harness.mjs';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { CATALOG, SHORT_PROMPT, LONG_PROMPT } from './bench-prompts.mjs';

const ENGINES = ['hearth-cpu', 'hearth-webgpu', 'wllama'];

function parseArgs(argv) {
  const a = { models: Object.keys(CATALOG), tokens: 32, engines: ENGINES, json: join(ROOT, 'target', 'bench-decode.json') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--models': a.models = val().split(',').filter(Boolean); break;
      case '--tokens': a.tokens = Number(val()); break;
      case '--engines': a.engines = val().split(',').filter(Boolean); break;
      case '--json': a.json = resolve(val()); break;
      default: throw new Error(`unknown flag ${flag} (flags: --models a,b,c --tokens N --engines ${ENGINES.join(',')} --json FILE)`);
    }
  }
  if (!Number.isInteger(a.tokens) || a.tokens < 2) throw new Error('--tokens must be an integer >= 2');
  for (const e of a.engines) if (!ENGINES.includes(e)) throw new Error(`--engines: unknown ${e} (known: ${ENGINES.join(', ')})`);
  return a;
}

const modelsDir = process.env.HEARTH_MODELS_DIR || join(ROOT, 'models');
const wllamaDir = join(ROOT, 'tools', 'node_modules', '@wllama', 'wllama', 'esm');

/** Runs in the page: load with Hearth, generate both prompts, dispose. */
async function hearthInPage({ url, backend, threads, prompts, tokens }) {
  const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
  const t0 = performance.now();
  const opts = { backend, contextLength: 1024 };
  if (threads != null) opts.threads = threads;
  const file = await GgufFile.fromUrl(url);
  const model = await LanguageModel.load(file, new SseStreamer(), opts);
  const loadMs = performance.now() - t0;
  const info = model.info;
  // A single-thread build has no thread knob: the caller then reports the xN cell as n/a.
  if (threads != null && info.threads !== threads) {
    model.dispose();
    return { na: `n/a: ran on ${info.threads ?? 1} thread(s)` };
  }
  const runs = [];
  for (const prompt of prompts) {
    const w0 = performance.now();
    const r = await model.generate(prompt, { maxTokens: tokens, temperature: 0, ignoreEos: true, cachePrompt: false });
    runs.push({
      promptTokens: r.promptTokens,
      generatedTokens: r.generatedTokens,
      prefillTokS: r.prefillTokensPerSecond,
      decodeTokS: r.decodeTokensPerSecond,
      ttftMs: r.ttftMs,
      wallMs: performance.now() - w0,
      text: r.text,
    });
  }
  model.dispose();
  return { loadMs, runs, backend: info.backend, threads: info.threads ?? 1 };
}

/** Runs in the page: load with wllama (CPU, local wasm), complete both prompts, exit. */
async function wllamaInPage({ url, wllamaUrl, threads, prompts, tokens }) {
  const { Wllama } = await import(`${wllamaUrl}/index.js`);
  const w = new Wllama({ default: `${wllamaUrl}/wasm/wllama.wasm` }, { suppressNativeLog: true, logger: { debug() {}, log() {}, warn: console.warn, error: console.error } });
  w.setCompat(null); // the wasm above, never the compat build from the CDN
  const t0 = performance.now();
  await w.loadModelFromUrl(url, { n_threads: threads, n_gpu_layers: 0, n_ctx: 1024, useCache: false });
  const loadMs = performance.now() - t0;
  const runs = [];
  for (const prompt of prompts) {
    const w0 = performance.now();
    const r = await w.createCompletion({ prompt, max_tokens: tokens, temperature: 0, top_k: 1, ignore_eos: true, cache_prompt: false });
    const t = r.timings;
    runs.push({
      promptTokens: t.prompt_n,
      generatedTokens: t.predicted_n,
      prefillTokS: t.prompt_per_second,
      decodeTokS: t.predicted_per_second,
      ttftMs: t.prompt_ms,
      wallMs: performance.now() - w0,
      text: r.choices[0].text,
    });
  }
  const out = { loadMs, runs, multithread: w.isMultithread(), threads: w.getNumThreads() };
  await w.exit();
  return out;
}

function fmt(v, digits = 2) {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : String(v ?? '-');
}

function table(results, n) {
  const cols = [
    ['hearth-cpu-1', 'Hearth cpu x1'],
    [`hearth-cpu-${n}`, `Hearth cpu x${n}`],
    ['hearth-webgpu', 'Hearth webgpu'],
    ['wllama-1', 'wllama x1'],
    [`wllama-${n}`, `wllama x${n}`],
  ];
  const lines = [];
  const row = (cells) => lines.push(`| ${cells.join(' | ')} |`);
  row(['model', 'metric', ...cols.map(([, title]) => title), 'Hearth/wllama x1', `Hearth/wllama x${n}`]);
  row(Array(cols.length + 4).fill('---'));
  for (const [model, byEngine] of Object.entries(results)) {
    const metrics = [
      ['load ms', (r) => r.loadMs, 0, 'lower'],
      ['prefill tok/s (long)', (r) => r.runs[1].prefillTokS, 1, 'higher'],
      ['decode tok/s (short)', (r) => r.runs[0].decodeTokS, 2, 'higher'],
      ['decode tok/s (long)', (r) => r.runs[1].decodeTokS, 2, 'higher'],
    ];
    for (const [name, get, digits, better] of metrics) {
      const val = (key) => {
        const r = byEngine[key];
        if (!r) return undefined;
        if (r.na || r.error) return r.na ?? `error: ${r.error}`;
        return get(r);
      };
      // Ratios read "Hearth is x times wllama": for load ms that is wllama/Hearth (lower is better).
      const ratio = (h, w) => {
        const a = val(h);
        const b = val(w);
        if (typeof a !== 'number' || typeof b !== 'number') return '-';
        return fmt(better === 'higher' ? a / b : b / a, 2);
      };
      row([model, name, ...cols.map(([key]) => fmt(val(key), digits)), ratio('hearth-cpu-1', 'wllama-1'), ratio(`hearth-cpu-${n}`, `wllama-${n}`)]);
    }
  }
  return lines.join('\n');
}

const args = parseArgs(process.argv.slice(2));
for (const m of args.models) {
  const file = CATALOG[m] ?? m;
  if (!existsSync(join(modelsDir, file))) throw new Error(`no model ${join(modelsDir, file)} (catalog keys: ${Object.keys(CATALOG).join(', ')})`);
}
if (!existsSync(join(wllamaDir, 'wasm', 'wllama.wasm'))) throw new Error(`no ${wllamaDir}/wasm/wllama.wasm: run ./run setup`);
if (!existsSync(join(ROOT, 'www', 'node_modules', '@hearth-llm', 'hearth', 'hearth_bg.wasm'))) throw new Error('no pkg/ build linked into www/: run ./run build');

const started = Date.now();
const server = await startServer({ root: join(ROOT, 'www'), port: 0, mounts: { '/models': modelsDir, '/wllama': wllamaDir } });
const origin = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
const results = {};
let env;
try {
  const page = await browser.newPage();
  page.on('console', (m) => {
    if (process.env.HEARTH_VERBOSE) console.error(`[page ${m.type()}] ${m.text()}`);
  });
  await page.goto(`${origin}/harness/`);
  await page.waitForFunction(() => document.body && document.body.dataset.ready === 'true', null, { timeout: 120_000 });
  env = await page.evaluate(() => ({
    crossOriginIsolated: self.crossOriginIsolated,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
  }));
  if (!env.crossOriginIsolated) throw new Error('the bench page is not cross-origin isolated (COOP/COEP headers missing)');
  const n = env.hardwareConcurrency;
  console.error(`headless Chromium, ${n} hardware threads, cross-origin isolated; ${args.tokens} greedy tokens per prompt`);
  const prompts = [SHORT_PROMPT, LONG_PROMPT];
  const jobs = [];
  for (const e of args.engines) {
    if (e === 'hearth-cpu') jobs.push(['hearth-cpu-1', hearthInPage, { backend: 'cpu', threads: 1 }], [`hearth-cpu-${n}`, hearthInPage, { backend: 'cpu', threads: n }]);
    if (e === 'hearth-webgpu') jobs.push(['hearth-webgpu', hearthInPage, { backend: 'webgpu' }]);
    if (e === 'wllama') jobs.push(['wllama-1', wllamaInPage, { threads: 1 }], [`wllama-${n}`, wllamaInPage, { threads: n }]);
  }
  for (const m of args.models) {
    const file = CATALOG[m] ?? m;
    const url = `${origin}/models/${file}`;
    results[m] = {};
    for (const [key, fn, opts] of jobs) {
      const t0 = Date.now();
      let r;
      try {
        r = await page.evaluate(fn, { url, prompts, tokens: args.tokens, wllamaUrl: `${origin}/wllama`, ...opts });
      } catch (e) {
        r = { error: String(e.message ?? e).split('\n')[0] };
      }
      r.wallMs = Date.now() - t0;
      results[m][key] = r;
      const summary = r.na ?? (r.error ? `error: ${r.error}` : `load ${fmt(r.loadMs, 0)} ms, prefill ${fmt(r.runs[1].prefillTokS, 1)} tok/s (${r.runs[1].promptTokens} tokens), decode ${fmt(r.runs[0].decodeTokS)} tok/s`);
      console.error(`${m} ${key}: ${summary} [${(r.wallMs / 1000).toFixed(0)} s]`);
    }
  }
  const out = table(results, n);
  console.log(out);
  mkdirSync(dirname(args.json), { recursive: true });
  writeFileSync(args.json, JSON.stringify({
    date: new Date().toISOString(),
    tokens: args.tokens,
    prompts: { short: SHORT_PROMPT, long: LONG_PROMPT },
    env,
    wall_s: (Date.now() - started) / 1000,
    results,
    table: out,
  }, null, 1));
  console.error(`wrote ${args.json} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
} finally {
  await browser.close();
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
}
