#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! The tiny random-weight fixtures from `tools/make_fixtures.py` are whole, valid models: every
//! header parses, every tensor decodes, the architecture metadata a loader needs is there, and
//! the copied tokenizer is the real model's, token for token.
//!
//! Fixtures live in `$HEARTH_FIXTURES_DIR` (default `.cache/fixtures`); `./run test` writes them.
//! Missing fixtures fail the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::fs;
use std::path::PathBuf;

use hearth::gguf::{GgufHeader, dequantize_to_vec};
use hearth::tokenizer::Tokenizer;

fn dir(var: &str, default: &str) -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED fixture checks: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root.join(default)))
}

const FIXTURES: [(&str, &str); 3] = [
    ("llama", "smollm2-135m-instruct-q4_1.gguf"),
    ("qwen2", "qwen2.5-coder-0.5b-instruct.gguf"),
    ("gemma3", "gemma-3-270m-q4_k_m.gguf"),
];
const FORMATS: [(&str, &str); 4] = [("f32", "F32"), ("q8_0", "Q8_0"), ("q4_0", "Q4_0"), ("q4_1", "Q4_1")];

fn header_of(path: &PathBuf) -> (Vec<u8>, GgufHeader) {
    let bytes = fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run `python3 tools/make_fixtures.py`, or ./run test)", path.display()));
    let header = GgufHeader::parse_complete(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (bytes, header)
}

#[test]
fn every_fixture_is_a_whole_model_with_the_real_tokenizer() {
    let (Some(fixtures), Some(models)) =
        (dir("HEARTH_FIXTURES_DIR", ".cache/fixtures"), dir("HEARTH_MODELS_DIR", "models"))
    else {
        return;
    };
    let texts = ["Hello, world!", "def f(x):\n    return x * 2  # ünïcödé 🦀 日本語"];
    for (arch, real) in FIXTURES {
        let (_, real_header) = header_of(&models.join(real));
        let real_tok = Tokenizer::from_gguf(&real_header).unwrap();
        for (format, ty) in FORMATS {
            let path = fixtures.join(format!("{arch}-{format}.gguf"));
            let (bytes, header) = header_of(&path);
            let name = path.display();
            assert_eq!(header.architecture().unwrap(), arch, "{name}");
            for key in ["context_length", "embedding_length", "block_count", "attention.head_count"] {
                header.get_u64_like(&format!("{arch}.{key}")).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            let embd = header.tensor("token_embd.weight").unwrap_or_else(|| panic!("{name}: no token_embd"));
            assert_eq!(embd.ggml_type.name(), ty, "{name}: the embedding takes the file's format");
            assert_eq!(embd.dims[1] as usize, real_tok.n_tokens(), "{name}: one embedding row per token");
            for t in header.tensors() {
                let raw = header.tensor_bytes(&bytes, &t.name).unwrap();
                let values = dequantize_to_vec(t.ggml_type, raw, t.n_elements as usize)
                    .unwrap_or_else(|e| panic!("{name} {}: {e}", t.name));
                assert!(values.iter().all(|v| v.is_finite()), "{name} {}", t.name);
                if t.name.ends_with("norm.weight") || t.name.ends_with(".bias") {
                    assert_eq!(t.ggml_type.name(), "F32", "{name} {}: norms and biases stay F32", t.name);
                }
            }
            let tok = Tokenizer::from_gguf(&header).unwrap_or_else(|e| panic!("{name}: {e}"));
            for text in texts {
                assert_eq!(tok.encode(text, true, true), real_tok.encode(text, true, true), "{name}: {text:?}");
            }
        }
    }
}
