#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! Parity with llama.cpp's tokenizer test vectors (`tests/test-tokenizer-0.cpp`
//! and `test-tokenizer-1-spm.cpp`): the `models/ggml-vocab-*.gguf` files and
//! their `.inp`/`.out` pairs, fetched into `.cache/vocab/` by
//! `tools/fetch_vocab.sh`. Missing vectors fail the test unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

use std::path::{Path, PathBuf};

use hearth::gguf::GgufHeader;
use hearth::tokenizer::{Tokenizer, TokenizerError, TokenizerKind};

/// Vocabularies whose model and pre-tokenizer this crate implements.
const SUPPORTED: &[&str] = &[
    "llama-spm",
    "phi-3",
    "gpt-2",
    "mpt",
    "llama-bpe",
    "qwen2",
    "qwen35",
    "starcoder",
    "refact",
    "command-r",
    "falcon",
    "deepseek-coder",
    "deepseek-llm",
];

/// Vocabularies llama.cpp tests that this crate rejects (WordPiece, Gemma 4's
/// BPE): construction must fail with an error, not panic.
const UNSUPPORTED: &[&str] = &["bert-bge", "gemma-4"];

fn vocab_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_VOCAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/vocab"));
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("skipping: {} missing and HEARTH_SKIP_REAL_MODELS=1", dir.display());
        return None;
    }
    panic!(
        "llama.cpp tokenizer vectors not found in {}: run tools/fetch_vocab.sh \
         (or set HEARTH_SKIP_REAL_MODELS=1 to skip)",
        dir.display()
    );
}

/// The tokenizer of `ggml-vocab-{name}.gguf`, read with the crate's GGUF reader; the outer
/// error is a file that does not parse, the inner one a vocabulary the tokenizer rejects.
fn try_load(dir: &Path, name: &str) -> Result<Result<Tokenizer, TokenizerError>, String> {
    let path = dir.join(format!("ggml-vocab-{name}.gguf"));
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let header = GgufHeader::parse_complete(&bytes).map_err(|e| format!("parsing {}: {e}", path.display()))?;
    Ok(Tokenizer::from_gguf(&header))
}

fn load(dir: &Path, name: &str) -> Tokenizer {
    try_load(dir, name).unwrap_or_else(|e| panic!("{e}")).unwrap_or_else(|e| panic!("building {name}: {e}"))
}

/// `read_tests` of test-tokenizer-0.cpp.
fn read_tests(dir: &Path, name: &str) -> Vec<(String, Vec<u32>)> {
    let inp = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.inp"))).expect("reading .inp");
    let out = std::fs::read_to_string(dir.join(format!("ggml-vocab-{name}.gguf.out"))).expect("reading .out");
    let inputs: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let inputs = match inputs.last() {
        Some(&"") => &inputs[..inputs.len() - 1],
        _ => &inputs[..],
    };
    let outputs: Vec<Vec<u32>> =
        out.lines().map(|l| l.split_whitespace().map(|t| t.parse().expect("token id")).collect()).collect();
    assert_eq!(inputs.len(), outputs.len(), "{name}: .inp and .out disagree on the number of tests");
    inputs.iter().map(|s| s.to_string()).zip(outputs).collect()
}

#[test]
fn llama_cpp_vectors() {
    let Some(dir) = vocab_dir() else { return };
    let mut failures = Vec::new();
    for name in SUPPORTED {
        let tok = load(&dir, name);
        let tests = read_tests(&dir, name);
        let mut passed = 0;
        for (text, expected) in &tests {
            // test-tokenizer-0: common_tokenize(ctx, text, add_special = false, parse_special = false)
            let got = tok.encode(text, false, false);
            if &got == expected {
                passed += 1;
            } else {
                failures.push(format!("{name}: {text:?}\n  expected {expected:?}\n  got      {got:?}"));
            }
        }
        eprintln!("{name}: {passed}/{} vectors match llama.cpp", tests.len());
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// decode(encode(x)) == x for every test input, for the vocabularies where
/// llama.cpp's detokenizer does not "clean up" spaces (it turns " ," into ","
/// etc. for gpt-2 style vocabularies, so those cannot round-trip).
#[test]
fn vectors_round_trip() {
    let Some(dir) = vocab_dir() else { return };
    let mut failures = Vec::new();
    for name in ["llama-spm", "qwen2", "qwen35", "command-r", "deepseek-coder", "deepseek-llm"] {
        let tok = load(&dir, name);
        for (text, _) in read_tests(&dir, name) {
            let decoded = tok.decode(&tok.encode(&text, false, false));
            if decoded != text {
                failures.push(format!("{name}: {text:?} -> {decoded:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} round-trip failures:\n{}", failures.len(), failures.join("\n"));
}

/// test-tokenizer-1-spm: every codepoint survives tokenize + detokenize
/// (sampled to keep the debug-build test quick).
#[test]
fn spm_codepoints_round_trip() {
    let Some(dir) = vocab_dir() else { return };
    let tok = load(&dir, "llama-spm");
    assert_eq!(tok.kind(), TokenizerKind::SentencePiece);
    let mut failures = Vec::new();
    for cp in (0..0x11_0000u32).step_by(7) {
        if cp == 0x2581 || (0x40000..=0xE0000).contains(&cp) {
            continue; // '▁' is the escaped space; the range is unassigned
        }
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        let s = c.to_string();
        let decoded = tok.decode(&tok.encode(&s, false, false));
        if decoded != s {
            failures.push(format!("U+{cp:04X} -> {decoded:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} codepoints do not round-trip: {:?}",
        failures.len(),
        &failures[..failures.len().min(20)]
    );
}

#[test]
fn unsupported_vocabularies_are_errors() {
    let Some(dir) = vocab_dir() else { return };
    for name in UNSUPPORTED {
        let err = try_load(&dir, name)
            .unwrap_or_else(|e| panic!("{e}"))
            .expect_err("unsupported vocabulary must be rejected");
        eprintln!("{name}: {err}");
    }
}
