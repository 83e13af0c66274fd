#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! Sampling from device-side candidates ([`Model::next_candidates`] +
//! [`Sampler::sample_candidates`], what [`generate`] does for `0 < top_k <= 64`) picks exactly
//! the tokens that reading the whole row back and sampling it ([`Model::next_logits`] +
//! [`Sampler::sample`]) picks, seed for seed, on the tiny random-weight fixtures: on the CPU
//! backend, and on the GPU backend when there is an adapter.
//!
//! Fixtures live in `$HEARTH_FIXTURES_DIR` (default `.cache/fixtures`); `./run test` writes them.
//! Missing fixtures fail the test unless `HEARTH_SKIP_REAL_MODELS=1`; no adapter fails the GPU
//! test unless `HEARTH_SKIP_GPU=1`.

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::backend::{WgpuDevice, init_wgpu_blocking};
use hearth::gguf::GgufHeader;
use hearth::infer::compute::{MAX_TOP_K, order_key, order_value};
use hearth::infer::gpu::Gpu;
use hearth::infer::sampler::Sampler;
use hearth::infer::{Compute, Cpu, GenerateParams, Model, SamplerParams, Shape, generate, load_weights};
use hearth::model::ModelConfig;
use hearth::tokenizer::Tokenizer;

fn fixture(name: &str) -> Option<(Vec<u8>, GgufHeader)> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED candidate sampling: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir =
        std::env::var_os("HEARTH_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".cache/fixtures"));
    let path = dir.join(name);
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test writes it)", path.display()));
    let header = GgufHeader::parse_complete(&bytes).unwrap();
    Some((bytes, header))
}

fn model<C: Compute>(compute: C, bytes: &[u8], header: &GgufHeader) -> Model<C> {
    let cfg = ModelConfig::from_gguf(header).unwrap();
    let weights = load_weights(&compute, &cfg, header, bytes).unwrap();
    Model::new(compute, cfg, weights, Shape::for_context(128)).unwrap()
}

/// The settings compared: the demo's default (temperature 0.8, top-k 40, seed 7), with a repetition
/// penalty, a wide one (top-k 64, no top-p/min-p), and greedy with a penalty (one candidate).
fn settings() -> Vec<SamplerParams> {
    let base = SamplerParams { temperature: 0.8, top_k: 40, seed: Some(7), ..SamplerParams::default() };
    vec![
        base.clone(),
        SamplerParams { repetition_penalty: 1.3, repeat_last_n: 16, ..base.clone() },
        SamplerParams { temperature: 1.5, top_k: 64, top_p: 1.0, min_p: 0.0, seed: Some(3), ..base.clone() },
        SamplerParams { repetition_penalty: 1.3, ..SamplerParams::greedy() },
    ]
}

/// `n` tokens the old way: the whole last row read back, sampled on the CPU.
fn full_row<C: Compute>(model: &mut Model<C>, prompt: &[u32], p: &SamplerParams, n: usize) -> Vec<u32> {
    model.reset();
    let mut sampler = Sampler::new(p.clone());
    let (mut history, mut input, mut out) = (prompt.to_vec(), prompt.to_vec(), Vec::new());
    for _ in 0..n {
        let logits = block_on(model.next_logits(&input)).unwrap();
        let id = sampler.sample(&logits, &history);
        history.push(id);
        out.push(id);
        input = vec![id];
    }
    out
}

/// `n` tokens through [`generate`] (the candidates path for these settings).
fn generated<C: Compute>(
    model: &mut Model<C>,
    tok: &Tokenizer,
    prompt: &[u32],
    p: &SamplerParams,
    n: usize,
) -> Vec<u32> {
    let params =
        GenerateParams { max_tokens: n, sampler: p.clone(), stop: Vec::new(), ignore_eog: true, reuse_cache: false };
    block_on(generate(model, tok, prompt, &params, &|| 0.0, &mut |_| true)).unwrap().generated_ids
}

/// The candidates of the first step equal the top of the full row, read back.
fn first_candidates_match<C: Compute>(model: &mut Model<C>, prompt: &[u32], what: &str) {
    model.reset();
    let row = block_on(model.next_logits(prompt)).unwrap();
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by_key(|&i| (std::cmp::Reverse(order_key(row[i as usize])), i));
    let want: Vec<(u32, f32)> =
        idx[..MAX_TOP_K].iter().map(|&i| (i, order_value(order_key(row[i as usize])))).collect();
    model.reset();
    let got = block_on(model.next_candidates(prompt, None, MAX_TOP_K)).unwrap();
    assert_eq!(got, want, "{what}: first-step candidates");
}

fn check<C: Compute>(compute: impl Fn() -> C, name: &str, n: usize) {
    let Some((bytes, header)) = fixture(name) else { return };
    let tok = Tokenizer::from_gguf(&header).unwrap();
    let prompt = tok.encode("Once upon a time, in a small village", true, true);
    let mut m = model(compute(), &bytes, &header);
    first_candidates_match(&mut m, &prompt, name);
    for p in settings() {
        let want = full_row(&mut m, &prompt, &p, n);
        let got = generated(&mut m, &tok, &prompt, &p, n);
        assert_eq!(got, want, "{name} {} with {p:?}", m.compute().describe());
        let distinct: std::collections::BTreeSet<_> = got.iter().collect();
        eprintln!("{name} {}: {} tokens, {} distinct, settings {p:?}", m.compute().describe(), n, distinct.len());
        assert!(p.is_greedy() || distinct.len() > 1, "{name}: a degenerate sample proves little");
    }
}

#[test]
fn candidates_sample_like_the_full_row_on_the_cpu() {
    check(Cpu::new, "llama-q8_0.gguf", 32);
    // Gemma's 262144-token vocabulary.
    check(Cpu::new, "gemma3-q8_0.gguf", 12);
}

#[test]
fn candidates_sample_like_the_full_row_on_the_gpu() {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED candidate sampling: HEARTH_SKIP_REAL_MODELS=1");
        return;
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, in the only GPU test here.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    let device = WgpuDevice::default();
    match init_wgpu_blocking(&device, None) {
        Ok(_) => {}
        Err(e) if std::env::var("HEARTH_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: no wgpu adapter ({e}); HEARTH_SKIP_GPU=1");
            return;
        }
        Err(e) => panic!("no wgpu adapter: {e} (set HEARTH_SKIP_GPU=1 to skip)"),
    };
    let gpu = || Gpu::new(device.clone()).unwrap();
    check(gpu, "llama-q8_0.gguf", 24);
    check(gpu, "gemma3-q8_0.gguf", 12);
}
