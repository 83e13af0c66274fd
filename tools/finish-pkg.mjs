// Runs after `wasm-pack build`: re-exports the JS error classes from the package
// entry (wasm-bindgen cannot export a class that extends Error, so they live in
// a snippet), and makes sure package.json ships the snippets and names its types.
import { readFileSync, writeFileSync, readdirSync, existsSync, copyFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = process.argv[2] || 'pkg';
const entry = join(pkg, 'hearth.js');

function find(dir, name) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const hit = find(p, name);
      if (hit) return hit;
    } else if (p.endsWith(name)) return p;
  }
  return null;
}

const snippets = join(pkg, 'snippets');
const errors = existsSync(snippets) ? find(snippets, join('src', 'web', 'errors.js')) : null;
if (!errors) throw new Error(`finish-pkg: no errors.js snippet under ${snippets}; did wasm-pack build run?`);

const classes = ['HearthError', 'InvalidInputError', 'GpuUnavailableError', 'ModelLoadError', 'OutOfMemoryError',
  'DownloadError', 'DeviceLostError', 'CancelledError', 'ModelFormatError', 'IntegrityError',
  'GpuError', 'WorkerError'];
const marker = '// hearth: error classes';
let js = readFileSync(entry, 'utf8');
if (!js.includes(marker)) {
  const from = `./${relative(pkg, errors).split('\\').join('/')}`;
  js += `\n${marker}\nexport { ${classes.join(', ')} } from '${from}';\n`;
  // model.stream(): generate() as an async iterator (a wasm-bindgen class cannot define one).
  js += `import { streamGenerate as __hearthStream } from '${from}';\n`;
  js += `LanguageModel.prototype.stream = function stream(input, options) { return __hearthStream(this, input, options); };\n`;
  // A task handle is its own async iterator (next/return are Rust methods).
  js += `TaskHandle.prototype[Symbol.asyncIterator] = function () { return this; };\n`;
  writeFileSync(entry, js);
}

// The OpenAI-style API (src/web/openai.js): shipped next to the errors.js snippet it imports,
// exported as `openai(executor)`, and `executor.chat` / `executor.completions` on TaskExecutor.
const openaiSource = fileURLToPath(new URL('../src/web/openai.js', import.meta.url));
copyFileSync(openaiSource, join(dirname(errors), 'openai.js'));
const openaiMarker = '// hearth: OpenAI-style API';
js = readFileSync(entry, 'utf8');
if (!js.includes(openaiMarker)) {
  const from = `./${relative(pkg, join(dirname(errors), 'openai.js')).split('\\').join('/')}`;
  js += `\n${openaiMarker}\nimport { openai as __hearthOpenai } from '${from}';\nexport { __hearthOpenai as openai };\n`;
  js += `Object.defineProperties(TaskExecutor.prototype, {\n`;
  js += `  chat: { get() { return __hearthOpenai(this).chat; }, configurable: true },\n`;
  js += `  completions: { get() { return __hearthOpenai(this).completions; }, configurable: true },\n`;
  js += `});\n`;
  writeFileSync(entry, js);
}

// Worker mode (ModelManager.create({ worker })): the worker script and the page's client sit at
// the package root (the client starts the worker with `new URL('./hearth-worker.js',
// import.meta.url)`, the form bundlers follow); hearth.js links the client to its classes.
const workerFiles = ['hearth-worker.js', 'hearth-worker-client.js', 'hearth-worker-proxies.js'];
const workerSrc = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'web', 'worker');
for (const f of workerFiles) copyFileSync(join(workerSrc, f), join(pkg, f));
const workerMarker = '// hearth: worker mode';
js = readFileSync(entry, 'utf8');
if (!js.includes(workerMarker)) {
  const from = `./${relative(pkg, errors).split('\\').join('/')}`;
  js += `\n${workerMarker}\n`;
  js += `import * as __hearthErrors from '${from}';\n`;
  js += `import { linkWorkerMode as __hearthLinkWorker } from './hearth-worker-client.js';\n`;
  js += `TaskExecutor = __hearthLinkWorker({ ModelManager, TaskExecutor, TaskHandle, LanguageModel, MemoryManager, SseStreamer, init: __wbg_init, errors: __hearthErrors });\n`;
  writeFileSync(entry, js);
}

// ---- The package manifest -------------------------------------------------------------------
// What a bundler (Vite, webpack, esbuild) and an npm consumer read. The npm name is scoped (the
// bare `hearth` belongs to an unrelated package); the crate keeps its name. wasm-bindgen's
// `--target web` entry loads the wasm with `new URL('hearth_bg.wasm', import.meta.url)`, which
// bundlers follow and emit as an asset, so nothing here names the wasm for the loader.
const NPM_NAME = '@hearth-llm/hearth';
const manifestPath = join(pkg, 'package.json');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
manifest.name = NPM_NAME;
manifest.type = 'module';
manifest.main = 'hearth.js';
manifest.module = 'hearth.js';
manifest.types = 'hearth.d.ts';
// Worker mode's script, when the build has one: its own entry, resolved by the package through
// `new URL('./hearth-worker.js', import.meta.url)`, and importable by name for custom workers.
const worker = existsSync(join(pkg, 'hearth-worker.js')) ? 'hearth-worker.js' : null;
const workerModules = worker ? workerFiles : [];
manifest.exports = {
  '.': { types: './hearth.d.ts', import: './hearth.js', default: './hearth.js' },
  ...(worker ? { './hearth-worker.js': `./${worker}` } : {}),
  './hearth_bg.wasm': './hearth_bg.wasm',
  './package.json': './package.json',
};
manifest.files = Array.from(new Set([...(manifest.files || []), 'hearth_bg.wasm', 'hearth.js', 'hearth.d.ts',
  'hearth_bg.wasm.d.ts', 'snippets', ...workerModules]));
// The entry patches prototypes (stream(), async iteration) and the snippets hold the error
// classes: neither may be tree-shaken as "unused".
manifest.sideEffects = ['./hearth.js', './snippets/*', ...workerModules.map((f) => `./${f}`)];
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
console.log(`finish-pkg: ${manifest.name}@${manifest.version}, error classes re-exported from ${relative(pkg, errors)}`);
