// The generated .d.ts must type everything: no `any` in what users call.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const dts = readFileSync(join(process.argv[2] || 'pkg', 'hearth.d.ts'), 'utf8');
// The wasm-bindgen init plumbing at the end (InitInput, InitOutput) is not ours.
const ours = dts.split(/export type InitInput\b/)[0];
const code = ours.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
const offenders = code.split('\n').filter((line) => /\bany\b/.test(line));
if (offenders.length) {
  console.error('hearth.d.ts exposes `any`:\n' + offenders.join('\n'));
  process.exit(1);
}
console.log('hearth.d.ts: no `any` in the public API');
