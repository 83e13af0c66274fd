#![cfg(not(target_arch = "wasm32"))] // native wgpu (Mesa lavapipe here); the browser has tests/js/infer.test.mjs
//! Every GPU kernel family on whole real models: with each family forced, the GPU engine is
//! teacher-forced along the CPU engine's greedy sequence (an 8-token prompt, then 32 greedy
//! tokens) and its logits must stay within 1e-3 of the CPU engine's at every step (max abs
//! difference over max abs logit). Decode steps run the fused kernels (one row), the prompt the
//! unfused ones. With a half-precision KV cache (`KvCache::F16`, halves packed two a word on the
//! GPU) the reference is the CPU engine with the same cache, within a looser bound ([`tolerance`]).
//!
//! No adapter fails the test unless `HEARTH_SKIP_GPU=1`; no model files fail it unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

mod common;

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::{Flash, Gpu, Kernels, TASKS_PER_SUBMISSION};
use hearth::infer::{Compute, Cpu, KvCache, Model, Shape, load_weights};
use hearth::model::ModelConfig;

const STEPS: usize = 32;

/// The bound on max |gpu - cpu| / max |cpu|. With f32 caches the engines agree to a few 1e-6
/// (1e-4 on Gemma 3). With half-precision caches both store the nearest half of each value (the
/// same bits for the same value, tests/gpu_backend.rs), but values they compute a few 1e-6 apart
/// can fall on either side of a rounding boundary and be stored a half's step (2^-11 of the
/// value) apart; over 32 steps that grew to at most 4.0e-4 of the largest logit on SmolLM2 and
/// Qwen2.5 and 7.8e-3 on Gemma 3 (measured on lavapipe; 1.1e-3 with the current kernels), whose
/// logits amplify differences most.
fn tolerance(kv: KvCache) -> f32 {
    match kv {
        KvCache::F32 => 1e-3,
        KvCache::F16 => 2e-2,
    }
}

fn model_file(name: &str) -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("models"));
    let path = dir.join(name);
    Some(fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test fetches it)", path.display())))
}

fn load<C: Compute>(compute: C, file: &[u8], kv: KvCache) -> Model<C> {
    let header = GgufHeader::parse_complete(file).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let weights = load_weights(&compute, &cfg, &header, file).unwrap();
    Model::new(compute, cfg, weights, Shape { kv, ..Shape::for_context(64) }).unwrap()
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold(0, |b, (i, x)| if *x > v[b] { i } else { b }) as u32
}

// One test function: burn allows one wgpu device init per process.
#[test]
fn every_kernel_family_tracks_the_cpu_engine_on_real_models() {
    let Some((device, features)) = common::device_and_features(Some(TASKS_PER_SUBMISSION)) else { return };
    eprintln!("adapter features: {features:?}");
    for name in ["smollm2-135m-instruct-q4_1.gguf", "gemma-3-270m-q4_k_m.gguf", "qwen2.5-coder-0.5b-instruct.gguf"] {
        let Some(file) = model_file(name) else { return };
        // Flash-decoding forced on the short context: every decoded token's keys in ranges of 8.
        let flash = Some(Flash { min_keys: 1, min_chunk: 8 });
        assert_eq!(flash.and_then(|f| f.split(9)), Some((2, 8)), "the first decoded token's 9 keys are split");
        for kv in [KvCache::F32, KvCache::F16] {
            // The CPU engine's greedy sequence and its logits at every step.
            let mut cpu = load(Cpu::exact(), &file, kv);
            let n_vocab = cpu.config().n_vocab;
            let prompt: Vec<u32> = (0..8u32).map(|i| 1 + (i * 7919 + 13) % (n_vocab.min(32_000) - 1)).collect();
            let mut feeds = vec![prompt];
            let mut want = Vec::new();
            for step in 0..=STEPS {
                let logits = block_on(cpu.next_logits(&feeds[step])).unwrap();
                feeds.push(vec![argmax(&logits)]);
                want.push(logits);
            }
            drop(cpu);
            let runs = match kv {
                KvCache::F32 => {
                    vec![
                        (Kernels::Rows, None),
                        (Kernels::Portable, None),
                        (Kernels::Portable, flash),
                        (Kernels::Subgroup, None),
                        // The prompt in f16 tiles (the blocks' unscaled values), the decoded
                        // tokens as `Subgroup`.
                        (Kernels::F16, None),
                    ]
                }
                KvCache::F16 => vec![(Kernels::Rows, None), (Kernels::Portable, flash), (Kernels::F16, None)],
            };
            for (kernels, flash) in runs {
                let gpu = Gpu::with_features(device.clone(), features, u64::MAX).unwrap();
                if let Err(e) = gpu.set_kernels(kernels) {
                    eprintln!("SKIPPED {name} {kernels:?}: {e}");
                    continue;
                }
                if let Some(flash) = flash {
                    gpu.set_flash_decoding(flash);
                }
                let mut model = load(gpu, &file, kv);
                let mut worst = 0f32;
                for (step, want) in want.iter().enumerate() {
                    let got = block_on(model.next_logits(&feeds[step])).unwrap();
                    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let diff = want.iter().zip(&got).fold(0f32, |m, (w, g)| m.max((w - g).abs()));
                    let rel = diff / scale;
                    assert!(
                        rel <= tolerance(kv),
                        "{name} {kernels:?} {flash:?} {kv:?} step {step}: logits differ by {rel:.2e} of {scale}"
                    );
                    worst = worst.max(rel);
                }
                eprintln!(
                    "{name} {kernels:?} {flash:?} {kv:?}: {} steps, worst max|gpu - cpu| / max|cpu| = {worst:.2e}",
                    want.len()
                );
            }
        }
    }
}
