#!/usr/bin/env node
// Raw, gzip (level 9) and brotli (quality 11) sizes of wasm files, as a server would send them.
//
//   node tools/wasm-size.mjs pkg/hearth_bg.wasm [more.wasm ...] [--json FILE]
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const args = process.argv.slice(2);
const j = args.indexOf('--json');
const json = j >= 0 ? args.splice(j, 2)[1] : null;
if (args.length === 0) throw new Error('usage: node tools/wasm-size.mjs FILE.wasm [...] [--json OUT]');

const mb = (n) => (n / 1e6).toFixed(2);
const rows = args.map((file) => {
  const bytes = readFileSync(file);
  const gzip = gzipSync(bytes, { level: 9 }).length;
  const brotli = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }).length;
  return { file, raw: bytes.length, gzip, brotli };
});
console.log('| file | raw MB | gzip MB | brotli MB |\n|---|---|---|---|');
for (const r of rows) console.log(`| ${r.file} | ${mb(r.raw)} | ${mb(r.gzip)} | ${mb(r.brotli)} |`);
if (json) writeFileSync(json, JSON.stringify(rows, null, 2) + '\n');
