#![cfg(not(target_arch = "wasm32"))] // native wgpu (Mesa lavapipe here); the browser runs them in tests/js/
//! A decode step recorded once and replayed (the GPU's decode graphs, `Gpu::set_decode_graphs`)
//! computes what the same step launched op by op computes, bit for bit: on the llama, qwen2
//! (biases) and gemma3 (per-head norms, sliding window) fixtures, with f32 and half-precision KV
//! caches, the `Rows` and `Portable` families, attention whole or split over the context (splits
//! forced every 4 keys, so the split changes every few tokens and steps are recorded again), for
//! ids written by the host and ids the previous step's argmax left on the device, and after the
//! context is rewound (the replay reads its position, so earlier positions replay too).
//!
//! Fixtures come from `$HEARTH_FIXTURES_DIR` (default `.cache/fixtures`, written by `./run test`).

mod common;

use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::{Flash, Gpu, Kernels, TASKS_PER_SUBMISSION};
use hearth::infer::{KvCache, Model, Shape, load_weights};
use hearth::model::ModelConfig;

fn fixture(name: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir =
        std::env::var_os("HEARTH_FIXTURES_DIR").map(PathBuf::from).unwrap_or_else(|| root.join(".cache/fixtures"));
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test writes the fixtures)", path.display()))
}

fn argmax(v: &[f32]) -> u32 {
    v.iter().enumerate().fold(0, |b, (i, x)| if *x > v[b] { i } else { b }) as u32
}

/// What a model computes along one fixed course: logits of a prompt and of 8 host-fed greedy
/// steps, 8 greedy ids picked on the device, then logits of 6 steps after rewinding to 5 tokens.
#[derive(Debug, PartialEq)]
struct Course {
    logits: Vec<Vec<f32>>,
    greedy: Vec<u32>,
}

fn course(model: &mut Model<Gpu>) -> Course {
    let n_vocab = model.config().n_vocab;
    let prompt: Vec<u32> = (0..5u32).map(|i| 1 + (i * 7919 + 13) % (n_vocab - 1)).collect();
    let mut logits = vec![block_on(model.next_logits(&prompt)).unwrap()];
    for _ in 0..8 {
        let next = argmax(logits.last().unwrap());
        logits.push(block_on(model.next_logits(&[next])).unwrap());
    }
    let mut greedy = vec![block_on(model.next_greedy(&[argmax(logits.last().unwrap())])).unwrap()];
    for _ in 0..7 {
        greedy.push(block_on(model.next_greedy(&[*greedy.last().unwrap()])).unwrap());
    }
    model.truncate(prompt.len());
    for step in 0..6u32 {
        logits.push(block_on(model.next_logits(&[1 + step])).unwrap());
    }
    Course { logits, greedy }
}

// One test function: burn allows one wgpu device init per process.
#[test]
fn a_replayed_decode_step_computes_what_the_launched_one_does() {
    let Some((device, features)) = common::device_and_features(Some(TASKS_PER_SUBMISSION)) else { return };
    let split = Flash { min_keys: 1, min_chunk: 4 };
    for name in ["llama-q4_1.gguf", "qwen2-q8_0.gguf", "gemma3-q4_0.gguf"] {
        let file = fixture(name);
        let header = GgufHeader::parse_complete(&file).unwrap();
        let cfg = ModelConfig::from_gguf(&header).unwrap();
        for kv in [KvCache::F32, KvCache::F16] {
            for (kernels, flash) in [(Kernels::Rows, None), (Kernels::Portable, Some(split))] {
                let run = |graphs: bool| {
                    let gpu = Gpu::with_features(device.clone(), features, u64::MAX).unwrap();
                    gpu.set_kernels(kernels).unwrap();
                    if let Some(flash) = flash {
                        gpu.set_flash_decoding(flash);
                    }
                    gpu.set_decode_graphs(graphs).unwrap();
                    assert_eq!(gpu.decode_graphs(), graphs, "the device binds the position buffer");
                    let weights = load_weights(&gpu, &cfg, &header, &file).unwrap();
                    let shape = Shape { kv, ..Shape::for_context(64) };
                    let mut model = Model::new(gpu, cfg.clone(), weights, shape).unwrap();
                    let course = course(&mut model);
                    assert_eq!(model.compute().decode_graphs_failure(), None);
                    (course, model.compute().decode_graph_counts())
                };
                let (launched, (replays, recordings)) = run(false);
                assert_eq!((replays, recordings), (0, 0));
                let (replayed, (replays, recordings)) = run(true);
                let what = format!("{name} {kv:?} {kernels:?} {flash:?}");
                assert_eq!(replayed, launched, "{what}");
                // 22 decode steps: recorded where the step's inputs or attention's split change.
                assert_eq!(replays + recordings, 22, "{what}");
                assert!(replays >= 8, "{what}: {replays} replayed, {recordings} recorded");
                eprintln!("{what}: {replays} steps replayed, {recordings} recorded, logits equal");
            }
        }
    }
}
