// Runs after `wasm-pack build`: re-exports the JS error classes from the package
// entry (wasm-bindgen cannot export a class that extends Error, so they live in
// a snippet), and makes sure package.json ships the snippets and names its types.
import { readFileSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

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
  'GpuError'];
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
manifest.exports = {
  '.': { types: './hearth.d.ts', import: './hearth.js', default: './hearth.js' },
  ...(worker ? { './hearth-worker.js': `./${worker}` } : {}),
  './hearth_bg.wasm': './hearth_bg.wasm',
  './package.json': './package.json',
};
manifest.files = Array.from(new Set([...(manifest.files || []), 'hearth_bg.wasm', 'hearth.js', 'hearth.d.ts',
  'hearth_bg.wasm.d.ts', 'snippets', ...(worker ? [worker] : [])]));
// The entry patches prototypes (stream(), async iteration) and the snippets hold the error
// classes: neither may be tree-shaken as "unused".
manifest.sideEffects = ['./hearth.js', './snippets/*', ...(worker ? [`./${worker}`] : [])];
writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
console.log(`finish-pkg: ${manifest.name}@${manifest.version}, error classes re-exported from ${relative(pkg, errors)}`);
