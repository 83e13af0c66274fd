#!/usr/bin/env node
// Greedy-generation goldens from llama.cpp (through node-llama-cpp 3.21.1, CPU, 1 thread), for
// testing Hearth's forward pass + sampling loop end to end against llama.cpp on the real models.
//
// Writes, for each model, tests/golden/generate/<model file stem>.json:
//   {model, sha256, n_vocab, llama_cpp: "node-llama-cpp 3.21.1", settings, bos_prepended,
//    chat_template, cases: [...]}
// with 4 cases per model (2 plain completions, 2 chat prompts). Each case:
//   kind            "completion" | "chat"
//   user_message    (chat only) the user turn that was put through the chat template
//   prompt          the text that was tokenized (for chat: the formatted template output)
//   prompt_ids      llama.cpp's tokenization of `prompt` (special tokens parsed, BOS prepended
//                   when the model's GGUF asks for it -- exactly as tools/llamacpp_logits.mjs)
//   generated_ids   up to 32 greedy (argmax) tokens; generation stops early only when an
//                   end-of-generation token (llama_vocab_is_eog: EOS, EOT, <|im_end|>,
//                   <end_of_turn>, ...) is produced, and that token is kept as the last id
//   stopped_at_eog  whether that happened
//   top5            one entry per generated token: the 5 most probable next tokens
//                   [[id, logprob], ...] at that step, best first (logprob = log softmax of
//                   the raw logits, rounded to 5 decimals); top5[i][0][0] == generated_ids[i]
//   text            llama_detokenize(generated_ids) without rendering special tokens
//
// How the prompts are built:
//   - BOS: prepended iff node-llama-cpp's `model.tokens.shouldPrependBosToken` (GGUF
//     tokenizer.ggml.add_bos_token) -- true for gemma3, false for the SmolLM2 and Qwen2.5 GGUFs.
//   - Chat: the GGUF's own `tokenizer.chat_template` is rendered with @huggingface/jinja
//     (messages = [{role: "user", content}], add_generation_prompt = true, bos_token/eos_token
//     set). A GGUF without a template (the gemma-3-270m base model) gets llama.cpp's built-in
//     "gemma" template (llm_chat_apply_template, LLM_CHAT_TEMPLATE_GEMMA), i.e. what
//     `--chat-template gemma` selects. If a rendered template already starts with the BOS text,
//     BOS is not prepended a second time.
//
// llama.cpp settings: KV cache F32 (K and V), flash attention off, 1 thread, no GPU, a fresh
// context per case (positions start at 0), temperature 0 / no penalties in the sampler chain.
//
// Setup (outside the repo, nothing is committed):
//   mkdir -p /tmp/nlc && cd /tmp/nlc && npm init -y && npm install node-llama-cpp@3.21.1
// Run (from the repo root; a few minutes on 2 cores):
//   nice node tools/llamacpp_generate.mjs [MODELS_DIR] [MODEL_FILE ...]
// MODELS_DIR defaults to models/; MODEL_FILEs default to the three models below.
// NODE_LLAMA_CPP names the package folder (default /tmp/nlc/node_modules/node-llama-cpp).

import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = process.env.NODE_LLAMA_CPP ?? "/tmp/nlc/node_modules/node-llama-cpp";
const { getLlama, readGgufFileInfo, LlamaLogLevel } = await import(pathToFileURL(path.join(pkg, "dist/index.js")).href);
const pkgVersion = JSON.parse(fs.readFileSync(path.join(pkg, "package.json"), "utf8")).version;
// @huggingface/jinja is a dependency of node-llama-cpp; resolve it from there.
const { Template } = await import(createRequire(path.join(pkg, "package.json")).resolve("@huggingface/jinja"));

const modelsDir = path.resolve(process.argv[2] ?? path.join(root, "models"));
const modelFiles = process.argv.length > 3 ? process.argv.slice(3) : [
    "smollm2-135m-instruct-q4_1.gguf",
    "gemma-3-270m-q4_k_m.gguf",
    "qwen2.5-coder-0.5b-instruct.gguf",
];
const outDir = path.join(root, "tests", "golden", "generate");
fs.mkdirSync(outDir, { recursive: true });

const N_GENERATE = 32;
const TOP_K = 5;
const COMPLETIONS = ["The capital of France is", "def fibonacci(n):"];
const CHATS = ["What is the tallest mountain in the world?", "Write a haiku about the sea."];

const round5 = (x) => (Number.isFinite(x) ? Number(x.toFixed(5)) || 0 : x); // no "-0"
const sha256 = (file) => new Promise((resolve, reject) => {
    const h = crypto.createHash("sha256");
    fs.createReadStream(file).on("data", (d) => h.update(d)).on("end", () => resolve(h.digest("hex"))).on("error", reject);
});

// llama.cpp src/llama-chat.cpp, LLM_CHAT_TEMPLATE_GEMMA (no BOS: the tokenizer adds it).
function gemmaBuiltinTemplate(messages) {
    let out = "", system = "";
    for (const m of messages) {
        if (m.role === "system") { system += m.content.trim(); continue; }
        const role = m.role === "assistant" ? "model" : m.role;
        out += `<start_of_turn>${role}\n`;
        if (system && role !== "model") { out += `${system}\n\n`; system = ""; }
        out += `${m.content.trim()}<end_of_turn>\n`;
    }
    return out + "<start_of_turn>model\n";
}

// Compact JSON: id lists on one line, one line per top5 step.
function toJson(v, ind = "") {
    const prim = (x) => x === null || typeof x !== "object";
    const flat = (x) => prim(x) || (Array.isArray(x) && (x.every(prim) || (x.every(flat) && JSON.stringify(x).length <= 120)));
    if (flat(v)) return JSON.stringify(v);
    const inner = ind + " ";
    if (Array.isArray(v)) return "[\n" + v.map((x) => inner + toJson(x, inner)).join(",\n") + "\n" + ind + "]";
    return "{\n" + Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(k)}: ${toJson(x, inner)}`).join(",\n") + "\n" + ind + "}";
}

const llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error, build: "never" });

for (const file of modelFiles) {
    const modelPath = path.join(modelsDir, file);
    const stem = path.basename(file, ".gguf");
    const t0 = Date.now();
    const info = await readGgufFileInfo(modelPath, { readTensorInfo: false });
    const tokMeta = info.metadata.tokenizer;
    const nVocab = tokMeta.ggml.tokens.length;
    const ggufTemplate = tokMeta.chat_template ?? null;

    const model = await llama.loadModel({ modelPath, gpuLayers: 0, useMmap: true });
    const bos = model.tokens.bos;
    const bosText = model.tokens.bosString;
    const wantBos = model.tokens.shouldPrependBosToken && bos != null;

    const formatChat = (content) => {
        const messages = [{ role: "user", content }];
        if (ggufTemplate == null) return gemmaBuiltinTemplate(messages);
        return new Template(ggufTemplate).render({
            messages, add_generation_prompt: true,
            bos_token: bosText ?? "", eos_token: model.tokens.eosString ?? "",
        });
    };
    const tokenize = (text) => {
        const ids = model.tokenize(text, true);
        const templHasBos = bosText != null && text.startsWith(bosText);
        return wantBos && !templHasBos ? [bos, ...ids] : ids;
    };

    const cases = [
        ...COMPLETIONS.map((prompt) => ({ kind: "completion", prompt })),
        ...CHATS.map((user_message) => ({ kind: "chat", user_message, prompt: formatChat(user_message) })),
    ];
    for (const c of cases) {
        c.prompt_ids = tokenize(c.prompt);
        const n = c.prompt_ids.length + N_GENERATE;
        const context = await model.createContext({
            contextSize: Math.max(64, n), batchSize: Math.max(64, n), threads: 1,
            flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32",
        });
        const seq = context.getSequence();
        const want = { generateNext: { token: true, probabilities: true, options: { temperature: 0 } } };
        const last = c.prompt_ids.length - 1;
        let [res] = (await seq.controlledEvaluate(c.prompt_ids.map((t, i) => (i === last ? [t, want] : t)))).slice(last);
        c.generated_ids = [];
        c.stopped_at_eog = false;
        c.top5 = [];
        for (let step = 0; step < N_GENERATE; step++) {
            const probs = res.next.probabilities; // Map, sorted by logit, best first
            if (probs.size !== nVocab) throw new Error(`${stem}: ${probs.size} probabilities, n_vocab ${nVocab}`);
            const top = [...probs.entries()].slice(0, TOP_K);
            const tok = res.next.token;
            if (tok !== top[0][0] && probs.get(tok) !== top[0][1]) throw new Error(`${stem}: sampled ${tok}, argmax ${top[0][0]}`);
            c.generated_ids.push(tok);
            c.top5.push(top.map(([id, p]) => [id, round5(Math.log(p))]));
            if (model.isEogToken(tok)) { c.stopped_at_eog = true; break; }
            if (step + 1 < N_GENERATE) [res] = await seq.controlledEvaluate([[tok, want]]);
        }
        c.text = model.detokenize(c.generated_ids, false);
        await context.dispose();
        console.log(`${stem} [${c.kind}] ${JSON.stringify(c.user_message ?? c.prompt)} -> ${JSON.stringify(c.text)}${c.stopped_at_eog ? " <EOG>" : ""}`);
    }

    const out = {
        model: file,
        sha256: await sha256(modelPath),
        n_vocab: nVocab,
        llama_cpp: `node-llama-cpp ${pkgVersion}`,
        settings: { threads: 1, gpu: false, kv_cache: "F32", flash_attention: false, sampler: "greedy (argmax), no penalties", max_new_tokens: N_GENERATE },
        bos_prepended: wantBos,
        bos_id: bos,
        chat_template: ggufTemplate != null ? "gguf tokenizer.chat_template (rendered with @huggingface/jinja)" : "llama.cpp built-in \"gemma\" (GGUF has no tokenizer.chat_template)",
        cases: cases.map(({ kind, user_message, prompt, prompt_ids, generated_ids, stopped_at_eog, top5, text }) =>
            ({ kind, ...(user_message != null ? { user_message } : {}), prompt, prompt_ids, generated_ids, stopped_at_eog, text, top5 })),
    };
    fs.writeFileSync(path.join(outDir, `${stem}.json`), toJson(out) + "\n");
    console.log(`${stem}: wrote ${path.relative(root, path.join(outDir, stem + ".json"))} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    await model.dispose();
}
await llama.dispose();
