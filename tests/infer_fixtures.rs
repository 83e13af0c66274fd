#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! The forward pass on the CPU backend against an independent reference: for each tiny
//! random-weight fixture (3 architectures x F32/Q8_0/Q4_0/Q4_1), the logits at every prompt
//! position must be within 1e-3 (max-abs error over max-abs value, per position) of
//! `tools/reference_forward.py`'s float64 numpy forward over `gguf.quants.dequantize`, which
//! itself matches llama.cpp to 3e-7 on the F32 fixtures.
//!
//! Goldens live in `$HEARTH_FORWARD_GOLDEN_DIR` (default `.cache/golden/forward`), fixtures in
//! `$HEARTH_FIXTURES_DIR` (default `.cache/fixtures`); `./run test` writes both. Missing files
//! fail the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::{Cpu, KvCache, Model, Shape, load_weights};
use hearth::model::ModelConfig;

fn dir(var: &str, default: &str) -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED forward goldens: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| root.join(default)))
}

/// Max-abs error over max-abs value of one row.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let scale = want.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (&a, &b)| m.max((f64::from(a) - f64::from(b)).abs()));
    err / scale.max(1e-30)
}

fn read_f32(path: &PathBuf) -> Vec<f32> {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (./run test writes it)", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn cpu_logits_match_the_float64_reference_on_every_fixture() {
    let (Some(golden), Some(fixtures)) =
        (dir("HEARTH_FORWARD_GOLDEN_DIR", ".cache/golden/forward"), dir("HEARTH_FIXTURES_DIR", ".cache/fixtures"))
    else {
        return;
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(golden.join("manifest.json")).expect("forward manifest (./run test writes it)"),
    )
    .unwrap();
    let entries = manifest["entries"].as_array().unwrap();
    assert!(entries.len() >= 39, "expected 13 fixtures x 3 prompts, found {}", entries.len());
    let mut worst = 0f64;
    let mut failures = Vec::new();
    for e in entries {
        let fixture = e["fixture"].as_str().unwrap();
        let ids: Vec<u32> = e["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        let n_vocab = e["n_vocab"].as_u64().unwrap() as usize;
        let file = fs::read(fixtures.join(fixture)).unwrap_or_else(|err| panic!("{fixture}: {err}"));
        let header = GgufHeader::parse_complete(&file).unwrap();
        let cfg = ModelConfig::from_gguf(&header).unwrap();
        let cpu = Cpu::exact();
        let weights = load_weights(&cpu, &cfg, &header, &file).unwrap();
        // Two prefill rows per step, so the golden also covers a cache that carries over steps.
        let shape = Shape { context: 64, batch: 2, logit_rows: 2, kv: KvCache::F32 };
        let mut model = Model::new(cpu, cfg, weights, shape).unwrap();
        let got = block_on(model.all_logits(&ids)).unwrap();
        let want = read_f32(&golden.join(e["file"].as_str().unwrap()));
        assert_eq!(got.len(), want.len(), "{fixture} {}", e["prompt"]);
        for p in 0..ids.len() {
            let r = rel_err(&got[p * n_vocab..(p + 1) * n_vocab], &want[p * n_vocab..(p + 1) * n_vocab]);
            worst = worst.max(r);
            if r > 1e-3 {
                failures.push(format!("{fixture} prompt {} position {p}: rel err {r:.2e}", e["prompt"]));
            }
        }
    }
    eprintln!("worst relative error over {} goldens: {worst:.2e}", entries.len());
    assert!(failures.is_empty(), "{} positions off:\n{}", failures.len(), failures.join("\n"));
}
