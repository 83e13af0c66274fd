#![cfg(not(target_arch = "wasm32"))] // native wgpu (Mesa lavapipe here); the browser has tests/js/infer.test.mjs
//! The whole forward pass on the GPU backend, natively on wgpu: a real model (SmolLM2-135M
//! Q4_1) produces the same greedy tokens as the CPU backend, its logits agree closely, every
//! byte it allocated goes back when it is dropped, and a model whose tensors exceed the binding
//! limit is split, not rejected. Also the fixture goldens (float64 reference) on the GPU.
//!
//! No adapter fails the test unless `HEARTH_SKIP_GPU=1`; no model files fail it unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

mod common;

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::Gpu;
use hearth::infer::{Compute, Cpu, Model, Shape, load_weights};
use hearth::model::ModelConfig;

fn file(dir_var: &str, default: &str, name: &str) -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os(dir_var).map(PathBuf::from).unwrap_or_else(|| root.join(default));
    let path = dir.join(name);
    Some(fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test fetches it)", path.display())))
}

fn greedy<C: Compute>(model: &mut Model<C>, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<f32>) {
    model.reset();
    let first_logits = block_on(model.next_logits(prompt)).unwrap();
    let mut ids = vec![hearth::infer::sampler::argmax(&first_logits)];
    // Rewind one step and continue with greedy (argmax on the device) from the same state.
    model.reset();
    let mut next = block_on(model.next_greedy(prompt)).unwrap();
    assert_eq!(next, ids[0], "device argmax agrees with the host argmax of the same logits");
    for _ in 1..n {
        next = block_on(model.next_greedy(&[next])).unwrap();
        ids.push(next);
    }
    (ids, first_logits)
}

// One test function: burn allows one wgpu device init per process, and the memory check needs
// the device to itself.
#[test]
fn gpu_backend_runs_real_models_and_returns_its_memory() {
    let Some(device) = common::device(None) else { return };
    let Some(bytes) = file("HEARTH_MODELS_DIR", "models", "smollm2-135m-instruct-q4_1.gguf") else { return };
    let header = GgufHeader::parse_complete(&bytes).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let prompt = [504u32, 3575, 282, 4649, 314]; // "The capital of France is"

    let cpu = Cpu::exact();
    let w = load_weights(&cpu, &cfg, &header, &bytes).unwrap();
    let mut cpu_model = Model::new(cpu, cfg.clone(), w, Shape::for_context(64)).unwrap();
    let (cpu_ids, cpu_logits) = greedy(&mut cpu_model, &prompt, 8);

    let gpu = Gpu::new(device.clone()).unwrap();
    let baseline = gpu.resident_bytes();
    {
        let w = load_weights(&gpu, &cfg, &header, &bytes).unwrap();
        let gguf_bytes: u64 = header.tensors().iter().map(|t| t.size_bytes).sum();
        let on_gpu = gpu.resident_bytes() - baseline;
        eprintln!("SmolLM2 weights: {on_gpu} B on the GPU for {gguf_bytes} B of tensors in the file");
        assert!(on_gpu as f64 <= 1.25 * gguf_bytes as f64);
        let mut model = Model::new(gpu, cfg.clone(), w, Shape::for_context(64)).unwrap();
        let (gpu_ids, gpu_logits) = greedy(&mut model, &prompt, 8);
        let loaded = model.compute().resident_bytes();
        let scale = cpu_logits.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = cpu_logits.iter().zip(&gpu_logits).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("SmolLM2 first-step logits, GPU vs CPU: max abs err {err:.2e} (scale {scale:.1}); ids {gpu_ids:?}");
        assert!(err / scale < 1e-4, "GPU and CPU logits differ: {err} of {scale}");
        assert_eq!(gpu_ids, cpu_ids);
        let gpu = Gpu::new(device.clone()).unwrap();
        drop(model);
        // Dedicated allocations are handed back once the last handle is gone.
        let probe = gpu.alloc(1).unwrap();
        block_on(gpu.read(&probe, 0, 1)).unwrap();
        let after = gpu.resident_bytes();
        eprintln!("resident: baseline {baseline} B, loaded {loaded} B, after drop {after} B");
        // What stays is cubecl's small pools (kernel parameters), not the model: within 2%.
        let held = loaded - baseline;
        assert!(
            after <= baseline + held / 50,
            "memory did not come back: {after} B after, {loaded} B loaded, {baseline} B before"
        );
    }

    // A binding limit below the 28 MB embedding: the weights are split by rows, same tokens.
    let small = Gpu::with_max_binding(device.clone(), 8 << 20).unwrap();
    let w = load_weights(&small, &cfg, &header, &bytes).unwrap();
    let mut model = Model::new(small, cfg.clone(), w, Shape::for_context(64)).unwrap();
    let (split_ids, _) = greedy(&mut model, &prompt, 8);
    assert_eq!(split_ids, cpu_ids, "weights split at 8 MiB give the same tokens");
    drop(model);

    // A load that fails half-way (one row of ffn_down, 960 bytes, over a 700-byte binding
    // limit, after the 28 MB embedding went up) is a typed error and gives its memory back.
    let tight = Gpu::with_max_binding(device.clone(), 700).unwrap();
    let probe = tight.alloc(1).unwrap();
    block_on(tight.read(&probe, 0, 1)).unwrap(); // lets the dropped model's buffers go
    let before = tight.resident_bytes();
    let err = match load_weights(&tight, &cfg, &header, &bytes) {
        Err(e) => e,
        Ok(_) => panic!("a 960-byte row cannot fit a 700-byte binding"),
    };
    assert!(err.to_string().contains("ffn_down.weight"), "{err}");
    assert!(err.to_string().contains("binding limit"), "{err}");
    block_on(tight.read(&probe, 0, 1)).unwrap();
    let after = tight.resident_bytes();
    eprintln!("failed load: {err}; resident before {before} B, after {after} B");
    assert!(after <= before + (1 << 20), "a failed load kept {} B", after.saturating_sub(before));
}
