#!/usr/bin/env node
// llama.cpp's column of `./run bench gpu`: node-llama-cpp 3.21.1 (its prebuilt Vulkan build, or
// its CPU build) on the same GGUF file and the same run as examples/gpu_bench: a prompt of
// `--prompt-len` token ids spread over the vocabulary (gpu_bench's `prompt_ids`), then `--gen`
// greedy decode steps of one token each, `--reps` times after one warm-up run, medians reported.
//
//   node tools/bench-gpu-llamacpp.mjs --model FILE --n-vocab N [--gpu vulkan|cpu]
//        [--prompt-len 100] [--gen 32] [--reps 2]
//
// Prints one JSON line. `--gpu vulkan` offloads every layer to the first Vulkan device, which on
// a machine without a GPU is Mesa's lavapipe, the adapter Hearth's native wgpu runs on there:
// llama.cpp's Vulkan backend ignores CPU devices unless GGML_VK_VISIBLE_DEVICES names them, so it
// is set to "0" when unset. `--gpu cpu` runs llama.cpp's CPU build at the machine's core count
// (at most 8). llama.cpp keeps its defaults otherwise (F16 KV cache).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const a = { model: null, nVocab: null, gpu: 'vulkan', promptLen: 100, gen: 32, reps: 2 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--model': a.model = resolve(val()); break;
      case '--n-vocab': a.nVocab = Number(val()); break;
      case '--gpu': a.gpu = val(); break;
      case '--prompt-len': a.promptLen = Number(val()); break;
      case '--gen': a.gen = Number(val()); break;
      case '--reps': a.reps = Number(val()); break;
      default: throw new Error(`unknown flag ${flag} (flags: --model F --n-vocab N --gpu vulkan|cpu --prompt-len N --gen N --reps N)`);
    }
  }
  if (!a.model || !existsSync(a.model)) throw new Error(`--model: no file ${a.model}`);
  if (!Number.isInteger(a.nVocab) || a.nVocab < 2) throw new Error('--n-vocab must be the model\'s vocabulary size');
  if (!['vulkan', 'cpu'].includes(a.gpu)) throw new Error(`--gpu ${a.gpu}: expected vulkan or cpu`);
  for (const k of ['promptLen', 'gen', 'reps']) if (!Number.isInteger(a[k]) || a[k] < 1) throw new Error(`--${k} must be a positive integer`);
  return a;
}

/** gpu_bench's `prompt_ids`: `n` ids spread over the vocabulary, away from its ends. */
function promptIds(n, nVocab) {
  const span = Math.min(Math.max(nVocab, 2), 32000) - 1;
  return Array.from({ length: n }, (_, i) => 1 + ((i * 7919 + 13) % span));
}

const median = (v) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

const args = parseArgs(process.argv.slice(2));
const threads = Math.min(availableParallelism(), 8);
if (args.gpu === 'vulkan') process.env.GGML_VK_VISIBLE_DEVICES ??= '0';
const pkg = process.env.NODE_LLAMA_CPP ?? join(ROOT, 'tools', 'llamacpp', 'node_modules', 'node-llama-cpp');
if (!existsSync(join(pkg, 'dist', 'index.js'))) throw new Error(`no node-llama-cpp at ${pkg}: run ./run setup`);
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(pkg, 'dist', 'index.js')).href);

const llama = await getLlama({ gpu: args.gpu === 'cpu' ? false : args.gpu, logLevel: LlamaLogLevel.error, build: 'never' });
const devices = args.gpu === 'cpu' ? ['cpu'] : await llama.getGpuDeviceNames();
if (devices.length === 0) throw new Error(`llama.cpp's ${args.gpu} build found no device`);
let t = performance.now();
const model = await llama.loadModel({ modelPath: args.model, gpuLayers: args.gpu === 'cpu' ? 0 : 'max' });
const context = await model.createContext({ contextSize: 256, batchSize: 512, threads });
const loadMs = performance.now() - t;
const seq = context.getSequence();
const want = { generateNext: { token: true, options: { temperature: 0 } } };
const prompt = promptIds(args.promptLen, args.nVocab);

/** One run: the prompt in one evaluation, then `gen` single-token ones; times in ms. */
async function run(gen) {
  await seq.clearHistory();
  let t0 = performance.now();
  const first = await seq.controlledEvaluate(prompt.map((id, i) => (i === prompt.length - 1 ? [id, want] : id)));
  const prefillMs = performance.now() - t0;
  let next = first[prompt.length - 1].next.token;
  const ids = [next];
  t0 = performance.now();
  for (let i = 0; i < gen; i++) {
    const [r] = await seq.controlledEvaluate([[next, want]]);
    next = r.next.token;
    ids.push(next);
  }
  return { prefillMs, decodeMs: performance.now() - t0, ids };
}

await run(2); // warm-up: compiles the backend's pipelines for both shapes
const runs = [];
for (let i = 0; i < args.reps; i++) runs.push(await run(args.gen));
console.log(JSON.stringify({
  engine: 'llama.cpp',
  file: args.model,
  gpu: args.gpu,
  device: devices.join(', '),
  threads,
  load_ms: loadMs,
  prompt_tokens: args.promptLen,
  prefill_tok_s: median(runs.map((r) => (args.promptLen * 1e3) / r.prefillMs)),
  decode_tokens: args.gen,
  decode_tok_s: median(runs.map((r) => (args.gen * 1e3) / r.decodeMs)),
  greedy_ids: runs[0].ids.slice(0, args.gen),
}));
await context.dispose();
await model.dispose();
await llama.dispose();
