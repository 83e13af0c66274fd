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
// written: prompt k is evaluated (its first `from[k]` + 1 ids in one batch, then one id at a time)
// and, at every position p from `from[k]` to the one
// before the last, result.json gets llama.cpp's K most likely next tokens and the log-probability
// of the token that actually follows (ids[p + 1]):
//   prompts: [{ids, generated: [], summary: [{top: [[id, logprob], ...], next: logprob | null}]}]
// (null: that token has probability 0 in f32.)
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

const result = { n_vocab: nVocab, prompts: [] };
for (const [k, ids] of job.prompts.entries()) {
    // A fresh context per prompt: positions start at 0 and nothing is reused.
    const context = await model.createContext({
        contextSize: Math.max(32, maxLen),
        batchSize: Math.max(32, maxLen),
        threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
    });
    const seq = context.getSequence();
    const rows = [];
    const want = { generateNext: { probabilities: true, options: { temperature: 0 } } };
    if (job.summary) {
        const from = job.summary.from[k];
        // As llama.cpp generates (and as the goldens were written): the prompt in one batch, then
        // one token per evaluation. Evaluating the whole sequence in one batch takes llama.cpp's
        // batched matmul path, whose rounding differs from its decode path by up to ~0.5 nats here.
        const res = await seq.controlledEvaluate(ids.slice(0, from + 1).map((t, p) => (p === from ? [t, want] : t)));
        for (let p = from + 1; p + 1 < ids.length; p++) res.push(...(await seq.controlledEvaluate([[ids[p], want]])));
        const summary = [];
        for (let p = from; p + 1 < ids.length; p++) {
            const probs = res[p].next.probabilities; // sorted, most likely first
            const top = [];
            for (const [tok, pr] of probs) {
                if (top.length === job.summary.top) break;
                top.push([tok, Math.log(pr)]);
            }
            const pn = probs.get(ids[p + 1]) ?? 0;
            summary.push({ top, next: pn > 0 ? Math.log(pn) : null });
        }
        result.prompts.push({ ids, generated: [], summary });
        await context.dispose();
        continue;
    }
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
