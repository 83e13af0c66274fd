// Writes reference token ids for the real models from llama.cpp itself, via the
// prebuilt llama.cpp shipped in node-llama-cpp (npm), independent of this crate:
//   .cache/golden/tokenizer/<model file stem>.json
// tests/tokenizer_real_models.rs compares Tokenizer::encode/decode against them.
//
// Setup (outside the repo, nothing is committed):
//   mkdir -p /tmp/nlc && cd /tmp/nlc && npm init -y && npm install node-llama-cpp@3.21.1
//   NODE_PATH=/tmp/nlc/node_modules node tools/tokenizer_golden.mjs [models dir]
//
// node-llama-cpp's `model.tokenize(text, specialTokens)` is
// `common_tokenize(vocab, text, add_special = false, parse_special = specialTokens)`
// and `model.detokenize(ids)` is `llama_detokenize(.., remove_special = false,
// unparse_special = false)`.
import {createRequire} from "node:module";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const modelsDir = path.resolve(process.argv[2] ?? path.join(root, "models"));
const outDir = path.join(root, ".cache", "golden", "tokenizer");

// resolve node-llama-cpp from NODE_PATH (ES modules ignore it by default)
const require = createRequire(path.join(process.env.NODE_PATH ?? root, "noop.js"));
const nlcEntry = require.resolve("node-llama-cpp");
const {getLlama} = await import(pathToFileURL(nlcEntry).href);
const nlcVersion = JSON.parse(fs.readFileSync(path.join(path.dirname(nlcEntry), "..", "package.json"), "utf8")).version;

// Texts shared with tests/tokenizer_real_models.rs (which reads them back from the JSON).
export const TEXTS = [
    "Hello world",
    " Hello, world! It's 2024 and we've got 1234567 tokens.",
    "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n}\n",
    "def f(a, b):\n\treturn a  +  b\n\n\n# done\r\n",
    "Emoji: 🦙🚀 😶‍🌫️ ✅ 👍🏽",
    "中文分词测试，日本語のテキスト、한국어 텍스트",
    "Café naïve résumé — Ångström, Straße, Ελληνικά, Русский",
    "   leading and trailing spaces   ",
    "\n\n\nnewlines\n\n",
    "<|im_start|>user\nhi<|im_end|>\n<start_of_turn>user\nhi<end_of_turn>\n",
];

const llama = await getLlama({gpu: false, build: "never"});
fs.mkdirSync(outDir, {recursive: true});
for (const file of fs.readdirSync(modelsDir).filter((f) => f.endsWith(".gguf")).sort()) {
    const model = await llama.loadModel({modelPath: path.join(modelsDir, file), vocabOnly: true, gpuLayers: 0});
    const cases = [];
    for (const text of TEXTS) {
        for (const special of [false, true]) {
            const ids = Array.from(model.tokenize(text, special));
            const decoded = model.detokenize(ids, false);
            cases.push({text, parse_special: special, ids, decoded});
        }
    }
    const out = {model: file, generator: `node-llama-cpp ${nlcVersion}`, add_special: false, cases};
    const dest = path.join(outDir, file.replace(/\.gguf$/, ".json"));
    fs.writeFileSync(dest, JSON.stringify(out, null, 1) + "\n");
    console.log(`wrote ${dest} (${cases.length} cases)`);
    await model.dispose();
}
await llama.dispose();
