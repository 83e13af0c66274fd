#!/usr/bin/env node
// `./run bench native`: Hearth's native CPU engine against llama.cpp (node-llama-cpp 3.21.1, its
// prebuilt CPU build) on the same GGUF files, prompts, token counts and thread count.
//
//   node tools/bench-native.mjs [--models smollm2-135m,gemma-3-270m,qwen2.5-0.5b] [--tokens 32]
//        [--json target/bench-native.json]
//
// Hearth: the release example (`cargo build --release --example generate`, which `./run bench
// native` does first), once per prompt, `--ignore-eos` so it always times `--tokens` tokens, in
// the shipped CPU mode (8-bit activations, not `--exact`). Both engines run at the same thread
// count (THREADS below: Hearth's default, the machine's cores, at most 8). Each engine times itself: Hearth's
// GenerationResult, and here around llama.cpp's evaluations (prefill: the prompt in one batch up to
// the first token; decode: one token per evaluation after it). llama.cpp keeps its own defaults
// otherwise (F16 KV cache). The prompts are bench-decode.mjs's.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CATALOG, SHORT_PROMPT, LONG_PROMPT } from './bench-prompts.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Hearth's native CPU default (src/infer/cpu/mod.rs `threads_for`), passed to both engines.
const THREADS = Math.min(availableParallelism(), 8);

function parseArgs(argv) {
  const a = { models: Object.keys(CATALOG), tokens: 32, json: join(ROOT, 'target', 'bench-native.json') };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--models': a.models = val().split(',').filter(Boolean); break;
      case '--tokens': a.tokens = Number(val()); break;
      case '--json': a.json = resolve(val()); break;
      default: throw new Error(`unknown flag ${flag} (flags: --models a,b,c --tokens N --json FILE)`);
    }
  }
  if (!Number.isInteger(a.tokens) || a.tokens < 2) throw new Error('--tokens must be an integer >= 2');
  return a;
}

const args = parseArgs(process.argv.slice(2));
const modelsDir = process.env.HEARTH_MODELS_DIR || join(ROOT, 'models');
const example = join(process.env.CARGO_TARGET_DIR || join(ROOT, 'target'), 'release', 'examples', 'generate');
if (!existsSync(example)) throw new Error(`no ${example}: cargo build --release --example generate`);
const pkg = process.env.NODE_LLAMA_CPP ?? join(ROOT, 'tools', 'llamacpp', 'node_modules', 'node-llama-cpp');
if (!existsSync(join(pkg, 'dist', 'index.js'))) throw new Error(`no node-llama-cpp at ${pkg}: run ./run setup`);
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(pkg, 'dist', 'index.js')).href);

function hearth(path, prompt) {
  const out = execFileSync(example, ['--model', path, '--prompt', prompt, '--max-tokens', String(args.tokens), '--temperature', '0', '--ignore-eos', '--backend', 'cpu', '--threads', String(THREADS)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 1 << 24,
  });
  const r = JSON.parse(out.trim().split('\n').pop());
  return { loadMs: r.load_ms, promptTokens: r.prompt_tokens, generatedTokens: r.generated_ids.length, prefillTokS: r.prefill_tok_s, decodeTokS: r.decode_tok_s };
}

async function llamacpp(llama, path, prompts) {
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: path, gpuLayers: 0, useMmap: true });
  const loadMs = performance.now() - t0;
  const runs = [];
  for (const text of prompts) {
    const ids = model.tokenize(text, true);
    const prompt = model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos, ...ids] : ids;
    const context = await model.createContext({ contextSize: 1024, batchSize: 512, threads: THREADS });
    const seq = context.getSequence();
    const want = { generateNext: { token: true, options: { temperature: 0 } } };
    const p0 = performance.now();
    const first = await seq.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, want] : t)));
    const prefillMs = performance.now() - p0;
    let next = first[prompt.length - 1].next.token;
    const d0 = performance.now();
    for (let i = 1; i < args.tokens; i++) {
      const [r] = await seq.controlledEvaluate([[next, want]]);
      next = r.next.token;
    }
    const decodeMs = performance.now() - d0;
    runs.push({ promptTokens: prompt.length, generatedTokens: args.tokens, prefillTokS: (prompt.length * 1000) / prefillMs, decodeTokS: ((args.tokens - 1) * 1000) / decodeMs });
    await context.dispose();
  }
  await model.dispose();
  return { loadMs, runs };
}

const fmt = (v, d = 2) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '-');
const started = Date.now();
const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: 'never' });
const results = {};
const lines = [
  `| model | threads | Hearth load ms | llama.cpp load ms | Hearth prefill tok/s | llama.cpp prefill tok/s | prefill ratio | Hearth decode tok/s | llama.cpp decode tok/s | decode ratio |`,
  '|---|---|---|---|---|---|---|---|---|---|',
];
for (const m of args.models) {
  const path = join(modelsDir, CATALOG[m] ?? m);
  if (!existsSync(path)) throw new Error(`no model ${path}`);
  const h = [hearth(path, SHORT_PROMPT), hearth(path, LONG_PROMPT)];
  const l = await llamacpp(llama, path, [SHORT_PROMPT, LONG_PROMPT]);
  // Prefill from the long prompt, decode from the short one (as bench-decode.mjs).
  const r = {
    threads: THREADS,
    hearth: { loadMs: h[0].loadMs, runs: h },
    llamacpp: l,
    prefillRatio: h[1].prefillTokS / l.runs[1].prefillTokS,
    decodeRatio: h[0].decodeTokS / l.runs[0].decodeTokS,
  };
  results[m] = r;
  lines.push(`| ${m} | ${THREADS} | ${fmt(h[0].loadMs, 0)} | ${fmt(l.loadMs, 0)} | ${fmt(h[1].prefillTokS, 1)} | ${fmt(l.runs[1].prefillTokS, 1)} | ${fmt(r.prefillRatio)} | ${fmt(h[0].decodeTokS)} | ${fmt(l.runs[0].decodeTokS)} | ${fmt(r.decodeRatio)} |`);
  console.error(lines[lines.length - 1]);
}
await llama.dispose();
const table = lines.join('\n');
console.log(table);
mkdirSync(dirname(args.json), { recursive: true });
writeFileSync(args.json, JSON.stringify({ date: new Date().toISOString(), tokens: args.tokens, threads: THREADS, prompts: { short: SHORT_PROMPT, long: LONG_PROMPT }, wall_s: (Date.now() - started) / 1000, results, table }, null, 1));
console.error(`wrote ${args.json} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
