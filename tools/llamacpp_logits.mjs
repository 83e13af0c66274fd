#!/usr/bin/env node
// Evaluate token ids with llama.cpp (through node-llama-cpp, CPU, 1 thread) and write the
// next-token log-probabilities at every position, for tools/reference_forward_test.py.
//
// node-llama-cpp does not hand out raw logits, but `controlledEvaluate` with
// `generateNext.probabilities` returns softmax(logits) over the whole vocabulary with a greedy
// sampler (no temperature, top-k or penalties in the chain). log(p) = logit - logsumexp(logits),
// which is what we compare: it is the logits up to a per-position constant.
//
// The KV cache is kept in F32 and flash attention off, so an F32 model is computed in f32 end
// to end and the comparison is not blurred by llama.cpp's default F16 cache.
//
// Usage: node tools/llamacpp_logits.mjs JOB.json
//   JOB.json: {"model": PATH, "out": DIR, "n_vocab": N, "prompts": [[id, ...], ...],
//              "texts": [STRING, ...] (optional, tokenized by llama.cpp and appended to prompts),
//              "generate": N (greedy steps after each prompt),
//              "summary": {"top": K, "from": [position, ...]} (optional, see below)}
// Writes DIR/p<k>.logprobs.f32 (positions x n_vocab little-endian f32, positions = prompt
// length + N greedy steps) and DIR/result.json ({n_vocab, prompts: [{ids, generated}]}).
//
// With "summary" (teacher forcing, tests/fidelity_llamacpp.rs) nothing is generated and no .f32 is
// written: prompt k is evaluated twice, in a fresh context each time, along llama.cpp's two paths:
//   decode: its first `from[k]` + 1 ids in one batch, then one id per evaluation (as llama.cpp
//           generates, and as the goldens were written);
//   batch:  the whole sequence in one batch (llama.cpp's batched matmul path, as for a prompt).
// The two round differently (up to ~0.5 nats apart on the test models). At every position p from
// `from[k]` to the one before the last, result.json gets llama.cpp's K most likely next tokens by
// the decode path with both paths' log-probabilities, each path's best log-probability, and both
// paths' log-probabilities of the token that actually follows (ids[p + 1]):
//   prompts: [{ids, generated: [], summary: [{top: [[id, lp_decode, lp_batch], ...],
//              best: [lp_decode, lp_batch], next: [lp_decode, lp_batch]}]}]
// (a log-probability is null where that path gives the token probability 0 in f32.)
// With `summary.ids` ([prompt][position - from] -> [id, ...], optional), each summary entry also
// gets `ids: [[id, lp_decode, lp_batch], ...]` for those ids: another run's top tokens, judged here.
// NODE_LLAMA_CPP names the package folder (default tools/llamacpp/node_modules/node-llama-cpp,
// installed by `./run setup`).

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = process.env.NODE_LLAMA_CPP ?? path.join(here, "llamacpp", "node_modules", "node-llama-cpp");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(path.join(pkg, "dist/index.js")).href);

const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
fs.mkdirSync(job.out, { recursive: true });

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });
const model = await llama.loadModel({ modelPath: job.model, gpuLayers: 0, useMmap: true });
const nVocab = job.n_vocab; // node-llama-cpp does not expose it; the caller reads it from the GGUF
// Texts are tokenized by llama.cpp (special tokens parsed, BOS added when the model asks for it).
for (const text of job.texts ?? []) {
    const ids = model.tokenize(text, true);
    job.prompts.push(model.tokens.shouldPrependBosToken && model.tokens.bos != null ? [model.tokens.bos, ...ids] : ids);
}
const maxLen = Math.max(...job.prompts.map((p) => p.length)) + (job.generate ?? 0);

// A fresh context: positions start at 0 and nothing is reused.
function newContext() {
    return model.createContext({
        contextSize: Math.max(32, maxLen),
        batchSize: Math.max(32, maxLen),
        threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
    });
}

const want = { generateNext: { probabilities: true, options: { temperature: 0 } } };

// Teacher forcing in a fresh context: the evaluation results for every position from `from` on,
// along the decode path (ids up to `from` in one batch, then one id per evaluation) or in one batch.
async function evaluate(ids, from, oneByOne) {
    const context = await newContext();
    const seq = context.getSequence();
    const tagged = (t, p) => (p >= from && p + 1 < ids.length ? [t, want] : t);
    let res;
    if (oneByOne) {
        res = await seq.controlledEvaluate(ids.slice(0, from + 1).map(tagged));
        for (let p = from + 1; p + 1 < ids.length; p++) res.push(...(await seq.controlledEvaluate([[ids[p], want]])));
    } else {
        res = await seq.controlledEvaluate(ids.slice(0, ids.length - 1).map(tagged));
    }
    await context.dispose();
    return res;
}

const result = { n_vocab: nVocab, prompts: [] };
for (const [k, ids] of job.prompts.entries()) {
    if (job.summary) {
        const from = job.summary.from[k];
        const decode = await evaluate(ids, from, true);
        const batch = await evaluate(ids, from, false);
        const lp = (probs, tok) => {
            const pr = probs.get(tok) ?? 0;
            return pr > 0 ? Math.log(pr) : null;
        };
        const summary = [];
        for (let p = from; p + 1 < ids.length; p++) {
            const [d, b] = [decode[p].next.probabilities, batch[p].next.probabilities]; // sorted, best first
            const top = [];
            for (const [tok, pr] of d) {
                if (top.length === job.summary.top) break;
                top.push([tok, Math.log(pr), lp(b, tok)]);
            }
            const best = [d, b].map((probs) => Math.log(probs.values().next().value));
            const extra = (job.summary.ids?.[k]?.[p - from] ?? []).map((tok) => [tok, lp(d, tok), lp(b, tok)]);
            summary.push({ top, best, next: [lp(d, ids[p + 1]), lp(b, ids[p + 1])], ids: extra });
        }
        result.prompts.push({ ids, generated: [], summary });
        continue;
    }
    const context = await newContext();
    const seq = context.getSequence();
    const rows = [];
    const res = await seq.controlledEvaluate(ids.map((t) => [t, want]));
    for (const r of res) rows.push(r.next.probabilities);
    const generated = [];
    for (let step = 0; step < (job.generate ?? 0); step++) {
        const next = rows[rows.length - 1].entries().next().value[0]; // map is sorted, best first
        generated.push(next);
        const [r] = await seq.controlledEvaluate([[next, want]]);
        rows.push(r.next.probabilities);
    }
    const buf = new Float32Array(rows.length * nVocab).fill(-Infinity);
    rows.forEach((probs, pos) => {
        for (const [tok, p] of probs) buf[pos * nVocab + tok] = Math.log(p);
    });
    fs.writeFileSync(path.join(job.out, `p${k}.logprobs.f32`), Buffer.from(buf.buffer));
    result.prompts.push({ ids, generated });
    await context.dispose();
}
fs.writeFileSync(path.join(job.out, "result.json"), JSON.stringify(result, null, 1));
await model.dispose();
await llama.dispose();
