// Benchmark: GGUF header parse time and decode throughput per block format, in
// headless Chromium (the release package), on the real models. Prints a table and
// one JSON line; with HEARTH_NATIVE_BENCH_JSON pointing at the native bench's JSON
// it adds the browser/native ratio. Not a test: it asserts nothing about speed.
//
//   ./run bench gguf
import { openHarness } from '../tests/js/harness.mjs';
import { cpus, loadavg } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';

const MODELS = ['smollm2-135m-instruct-q4_1', 'gemma-3-270m-q4_k_m', 'qwen2.5-coder-0.5b-instruct'];
const h = await openHarness();
try {
  const result = await h.page.evaluate(async (models) => {
    const { GgufFile } = window.hearth;
    const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const headers = [];
    const decode = new Map(); // type -> { bytes, elements, ms }
    for (const model of models) {
      const url = `/models/${model}.gguf`;
      const remote = await GgufFile.fromUrl(url);
      // Parse time without the network: the header bytes already in memory.
      const prefix = new Uint8Array(await (await fetch(url, { headers: { Range: `bytes=0-${remote.dataOffset - 1}` } })).arrayBuffer());
      const padded = new Uint8Array(remote.fileBytes); // a sparse stand-in for the whole file
      padded.set(prefix);
      const times = [];
      for (let i = 0; i < 7; i++) {
        const t0 = performance.now();
        GgufFile.fromBytes(padded).free();
        times.push(performance.now() - t0);
      }
      const urlTimes = [];
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        (await GgufFile.fromUrl(url)).free();
        urlTimes.push(performance.now() - t0);
      }
      headers.push({ model, headerBytes: remote.dataOffset, parseMs: median(times), fromUrlMs: median(urlTimes) });

      await remote.download();
      // Up to three tensors per type, at most 8M elements each.
      const seen = new Map();
      for (const t of remote.tensors()) {
        const n = t.dims.reduce((a, b) => a * b, 1);
        if (n > 8 << 20 || (seen.get(t.type) || 0) >= 3) continue;
        seen.set(t.type, (seen.get(t.type) || 0) + 1);
        await remote.dequantize(t.name); // warm-up
        const reps = [];
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          await remote.dequantize(t.name);
          reps.push(performance.now() - t0);
        }
        const d = decode.get(t.type) || { bytes: 0, elements: 0, ms: 0 };
        d.bytes += t.size; d.elements += n; d.ms += median(reps);
        decode.set(t.type, d);
      }
      remote.free();
    }
    return { headers, decode: [...decode].map(([type, d]) => ({ type, mbPerSec: d.bytes / 1e6 / (d.ms / 1000), melemPerSec: d.elements / 1e6 / (d.ms / 1000) })) };
  }, MODELS);

  let native = null;
  const nativePath = process.env.HEARTH_NATIVE_BENCH_JSON;
  if (nativePath && existsSync(nativePath)) native = JSON.parse(readFileSync(nativePath, 'utf8'));
  const nativeDecode = (type) => native?.decode?.find((d) => d.type === type)?.hearth_mb_per_s;
  const nativeParse = (model) => native?.headers?.find((d) => model.startsWith(d.model?.replace(/\.gguf$/, '')))?.hearth_ms;

  console.log(`GGUF in headless Chromium ${h.page.context().browser().version()} (release wasm)`);
  console.log(`machine: ${cpus().length} x ${cpus()[0].model}, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log('\nheader parse                       header MB   parse ms   fromUrl ms   native ms   browser/native');
  for (const r of result.headers) {
    const n = nativeParse(r.model);
    console.log(`${r.model.padEnd(34)} ${(r.headerBytes / 1e6).toFixed(2).padStart(9)} ${r.parseMs.toFixed(1).padStart(10)} ${r.fromUrlMs.toFixed(1).padStart(12)} ${n ? n.toFixed(1).padStart(11) : '          -'} ${n ? (r.parseMs / n).toFixed(2).padStart(16) : '               -'}`);
  }
  console.log('\ndecode (incl. copy to Float32Array)  MB/s in   M elem/s   native MB/s   browser/native');
  for (const d of result.decode) {
    const n = nativeDecode(d.type);
    console.log(`${d.type.padEnd(36)} ${d.mbPerSec.toFixed(0).padStart(8)} ${d.melemPerSec.toFixed(0).padStart(10)} ${n ? n.toFixed(0).padStart(13) : '            -'} ${n ? (d.mbPerSec / n).toFixed(2).padStart(16) : '               -'}`);
  }
  console.log(JSON.stringify({ bench: 'gguf-browser', ...result }));
} finally {
  await h.close();
}
