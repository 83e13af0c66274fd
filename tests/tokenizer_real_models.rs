#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! Tokenizers of the real models in `models/` (fetched by
//! tools/fetch_models.sh): round trips, chat-template detection, and parity
//! with llama.cpp's ids written by tools/tokenizer_golden.mjs (node-llama-cpp)
//! into `.cache/golden/tokenizer/` (committed copies in `tests/golden/tokenizer/`
//! are used first). Missing files fail the test unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use hearth::gguf::{GgufError, GgufHeader};
use hearth::tokenizer::{ChatMessage, ChatTemplate, StreamDecoder, Tokenizer};

const MODELS: &[(&str, ChatTemplate)] = &[
    ("smollm2-135m-instruct-q4_1", ChatTemplate::ChatMl),
    ("gemma-3-270m-q4_k_m", ChatTemplate::Gemma),
    ("qwen2.5-coder-0.5b-instruct", ChatTemplate::ChatMl),
];

/// Same texts as tools/tokenizer_golden.mjs.
const TEXTS: &[&str] = &[
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

fn skip_allowed(what: &Path) -> bool {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("skipping: {} missing and HEARTH_SKIP_REAL_MODELS=1", what.display());
        return true;
    }
    false
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_path(stem: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("models"));
    let path = dir.join(format!("{stem}.gguf"));
    if path.is_file() {
        return Some(path);
    }
    if skip_allowed(&path) {
        return None;
    }
    panic!("model {} not found: run tools/fetch_models.sh (or set HEARTH_SKIP_REAL_MODELS=1)", path.display());
}

/// The header of a model file, read the way the browser does: a prefix of the file, grown
/// until the header fits, parsed knowing the file length (so every tensor range is still
/// checked against the file). Reading whole models (up to 0.5 GB) per test would only be slower.
fn read_header(path: &Path) -> GgufHeader {
    let mut file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file_len = file.metadata().unwrap().len();
    let mut prefix = Vec::new();
    let mut want = 8u64 << 20;
    loop {
        let have = prefix.len() as u64;
        (&mut file).take(want.min(file_len).saturating_sub(have)).read_to_end(&mut prefix).unwrap();
        match GgufHeader::parse_with_len(&prefix, Some(file_len)) {
            Err(GgufError::NeedMoreBytes { needed_at_least }) if (prefix.len() as u64) < file_len => {
                want = needed_at_least.max(2 * want);
            }
            other => {
                return other.unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            }
        }
    }
}

fn load(path: &Path) -> Tokenizer {
    Tokenizer::from_gguf(&read_header(path)).unwrap_or_else(|e| panic!("building tokenizer of {}: {e}", path.display()))
}

#[test]
fn round_trips_and_streaming() {
    for (stem, _) in MODELS {
        let Some(path) = model_path(stem) else {
            continue;
        };
        let tok = load(&path);
        for text in TEXTS {
            let ids = tok.encode(text, false, false);
            assert_eq!(&tok.decode(&ids), text, "{stem}: decode(encode(x)) != x");
            // streaming one token at a time gives the same text
            let mut stream = StreamDecoder::new();
            let mut streamed: String = ids.iter().map(|&id| stream.push(&tok, id)).collect();
            streamed.push_str(&stream.finish());
            // none of these models adds a space prefix or cleans spaces, so the
            // concatenated pieces are the text itself
            assert_eq!(&streamed, text, "{stem}: streamed text differs");
        }
    }
}

#[test]
fn chat_templates_are_detected_and_tokenized() {
    let messages = [ChatMessage::new("system", "Be brief."), ChatMessage::new("user", "Hi!")];
    for (stem, family) in MODELS {
        let Some(path) = model_path(stem) else {
            continue;
        };
        let header = read_header(&path);
        let tok = Tokenizer::from_gguf(&header).unwrap();
        let arch = header.architecture().ok();
        let template = ChatTemplate::detect(tok.chat_template(), arch).unwrap();
        assert_eq!(template, *family, "{stem}");
        let prompt = template.render(&messages, true).unwrap();
        let ids = tok.encode(&prompt, true, true);
        // the turn markers must come out as single control tokens
        let marker = match template {
            ChatTemplate::Gemma => "<start_of_turn>",
            ChatTemplate::ChatMl => "<|im_start|>",
            ChatTemplate::Llama3 => "<|start_header_id|>",
        };
        let marker_id = tok.token_id(marker).expect("turn marker in vocabulary");
        assert!(ids.contains(&marker_id), "{stem}: {marker} not parsed as a special token");
        let end = match template {
            ChatTemplate::Gemma => "<end_of_turn>",
            ChatTemplate::ChatMl => "<|im_end|>",
            ChatTemplate::Llama3 => "<|eot_id|>",
        };
        assert!(tok.is_eog(tok.token_id(end).unwrap()), "{stem}: {end} must end generation");
        if tok.add_bos() {
            assert_eq!(ids.first().copied(), tok.bos(), "{stem}: BOS expected first");
        }
    }
}

#[test]
fn matches_llama_cpp_golden_ids() {
    for (stem, _) in MODELS {
        let Some(path) = model_path(stem) else {
            continue;
        };
        // The committed copy first, then a freshly generated one.
        let name = format!("{stem}.json");
        let committed = root().join("tests/golden/tokenizer").join(&name);
        let golden_path =
            if committed.is_file() { committed } else { root().join(".cache/golden/tokenizer").join(&name) };
        if !golden_path.is_file() {
            if skip_allowed(&golden_path) {
                continue;
            }
            panic!(
                "{} missing: run `NODE_PATH=/tmp/nlc/node_modules node tools/tokenizer_golden.mjs` \
                 (see the script header) or set HEARTH_SKIP_REAL_MODELS=1",
                golden_path.display()
            );
        }
        let golden: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&golden_path).unwrap()).unwrap();
        let tok = load(&path);
        let cases = golden["cases"].as_array().expect("cases");
        assert!(!cases.is_empty());
        let mut failures = Vec::new();
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let special = case["parse_special"].as_bool().unwrap();
            let expected: Vec<u32> =
                case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let got = tok.encode(text, false, special);
            if got != expected {
                failures.push(format!(
                    "{stem} (parse_special={special}) {text:?}\n  llama.cpp {expected:?}\n  ours      {got:?}"
                ));
            }
            let decoded = tok.decode(&expected);
            if decoded != case["decoded"].as_str().unwrap() {
                failures.push(format!("{stem}: decode {expected:?} = {decoded:?}, llama.cpp {:?}", case["decoded"]));
            }
        }
        eprintln!("{stem}: {} golden cases (ids and decoded text), {} mismatches", cases.len(), failures.len());
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
