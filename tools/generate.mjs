#!/usr/bin/env node
// `./run generate`: run the real package (pkg/, as built) in headless Chromium on WebGPU and
// generate text. The last stdout line is one JSON object: text, prompt_ids, generated_ids,
// ttft_ms, prefill/decode tok/s, load_ms, backend, adapter. Errors exit 1 with the typed error.
//
//   node tools/generate.mjs --model <file | url | catalog key> --prompt "..." [--max-tokens 32]
//        [--temperature 0] [--seed N] [--backend auto|webgpu|cpu] [--chat] [--context 1024] [--threads N]
// The page is cross-origin isolated, so the CPU engine runs at its default thread count
// (navigator.hardwareConcurrency, at most 8); --threads N sets `LoadOptions.threads`.
import { basename, isAbsolute, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { openHarness, ROOT } from '../tests/js/harness.mjs';
import { CATALOG } from './bench-prompts.mjs';

function parseArgs(argv) {
  const a = { model: 'smollm2-135m', prompt: 'The capital of France is', maxTokens: 32, temperature: 0, backend: 'auto', chat: false, context: 1024 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--model': a.model = val(); break;
      case '--prompt': a.prompt = val(); break;
      case '--max-tokens': a.maxTokens = Number(val()); break;
      case '--temperature': a.temperature = Number(val()); break;
      case '--seed': a.seed = Number(val()); break;
      case '--backend': a.backend = val(); break;
      case '--context': a.context = Number(val()); break;
      case '--threads': a.threads = Number(val()); break;
      case '--chat': a.chat = true; break;
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  return a;
}

const modelsDir = process.env.HEARTH_MODELS_DIR || join(ROOT, 'models');

/** The URL the page fetches: the harness server mounts models/ at /models. */
function modelUrl(model, origin) {
  if (/^https?:\/\//.test(model)) return model;
  const file = CATALOG[model] ?? model;
  const path = isAbsolute(file) || existsSync(file) ? resolve(file) : join(modelsDir, file);
  if (!existsSync(path)) throw new Error(`no model file ${path} (catalog keys: ${Object.keys(CATALOG).join(', ')})`);
  if (resolve(path).startsWith(resolve(modelsDir) + '/')) return `${origin}/models/${path.slice(resolve(modelsDir).length + 1)}`;
  throw new Error(`${path} is outside ${modelsDir}; copy it there or set HEARTH_MODELS_DIR`);
}

let h;
try {
  const args = parseArgs(process.argv.slice(2));
  h = await openHarness();
  const url = modelUrl(args.model, h.origin);
  const result = await h.page.evaluate(async ({ url, args }) => {
    const { GgufFile, LanguageModel, SseStreamer } = window.hearth;
    const streamer = new SseStreamer();
    const log = [];
    streamer.subscribe((e) => { if (e.type === 'info' || e.type === 'error') log.push(typeof e.data === 'string' ? e.data : `${e.data.name}: ${e.data.message}`); });
    try {
      const t0 = performance.now();
      const file = await GgufFile.fromUrl(url);
      const model = await LanguageModel.load(file, streamer, { backend: args.backend, contextLength: args.context, threads: args.threads });
      const loadMs = performance.now() - t0;
      const r = await model.generate(args.prompt, {
        maxTokens: args.maxTokens, temperature: args.temperature, seed: args.seed, chat: args.chat,
      });
      const info = model.info;
      model.dispose();
      return { ok: true, r, info, loadMs, log };
    } catch (e) {
      return { ok: false, name: e?.name, code: e?.code, message: String(e?.message ?? e), log };
    }
  }, { url, args });
  for (const line of result.log) console.error(`[status] ${line}`);
  if (!result.ok) {
    console.error(`${result.name}: ${result.message}`);
    process.exitCode = 1;
  } else {
    const { r, info } = result;
    console.log(JSON.stringify({
      model: basename(url),
      text: r.text,
      prompt_ids: r.promptIds,
      generated_ids: r.generatedIds,
      stop_reason: r.stopReason,
      load_ms: Math.round(result.loadMs),
      ttft_ms: Math.round(r.ttftMs),
      prefill_tok_s: Number(r.prefillTokensPerSecond.toFixed(2)),
      decode_tok_s: Number(r.decodeTokensPerSecond.toFixed(2)),
      backend: info.backend,
      adapter: info.adapter,
      weight_bytes: info.weightBytes,
      file_bytes: info.fileBytes,
      threads: info.threads,
    }));
  }
  if (h.pageErrors.length) console.error(`page errors: ${h.pageErrors.join('; ')}`);
} catch (e) {
  console.error(`error: ${e.message}`);
  process.exitCode = 1;
} finally {
  await h?.close();
}
