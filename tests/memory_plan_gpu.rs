#![cfg(not(target_arch = "wasm32"))] // native wgpu (Mesa lavapipe here)
//! The memory plan is the allocator's figure: for each real model, the requirement the budget
//! is checked against ([`LoadPlan::requirement`], [`Requirement::for_load`]) equals, within
//! 0.1%, the device bytes the allocator holds once the model is loaded on the GPU backend with
//! that plan's shape (weights split at WebGPU's default binding limit, as in the browser).
//!
//! No adapter fails the test unless `HEARTH_SKIP_GPU=1`; no model files fail it unless
//! `HEARTH_SKIP_REAL_MODELS=1`.

mod common;

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::Gpu;
use hearth::infer::session::LoadPlan;
use hearth::infer::{Compute, Model, load_weights};
use hearth::memory::{DeviceLimits, Requirement};

fn models_dir() -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("models")))
}

// One test function: burn allows one wgpu device init per process.
#[test]
fn the_requirement_is_what_the_allocator_holds_for_the_real_models() {
    let Some(device) = common::device(None) else { return };
    let Some(dir) = models_dir() else { return };
    let limits = DeviceLimits::WEBGPU_DEFAULT;
    for (file, context) in [
        ("smollm2-135m-instruct-q4_1.gguf", 2048),
        ("gemma-3-270m-q4_k_m.gguf", 2048),
        ("qwen2.5-coder-0.5b-instruct.gguf", 1024),
    ] {
        let path = dir.join(file);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test fetches it)", path.display()));
        let header = GgufHeader::parse_complete(&bytes).unwrap();
        let plan = LoadPlan::new(&header, None, Some(context)).unwrap();
        let planned = plan.requirement(&header, &limits);
        assert_eq!(planned, Requirement::for_load(&header, context, &limits).unwrap(), "{file}: one figure");
        assert!(planned.problems.is_empty(), "{file}: {:?}", planned.problems);

        // As the browser's device: bindings of WebGPU's default limit.
        let gpu = Gpu::with_max_binding(device.clone(), limits.binding_limit()).unwrap();
        let probe = gpu.alloc(1).unwrap();
        block_on(gpu.read(&probe, 0, 1)).unwrap(); // earlier models' buffers are handed back
        let baseline = gpu.resident_bytes();
        let weights = load_weights(&gpu, &plan.cfg, &header, &bytes).unwrap();
        let after_weights = gpu.resident_bytes() - baseline;
        let model = Model::new(gpu, plan.cfg.clone(), weights, plan.shape).unwrap();
        let measured = model.compute().resident_bytes() - baseline;
        let counted = planned.total_bytes;
        let off = (measured as f64 - counted as f64) / counted as f64;
        eprintln!(
            "{file} at context {context}: planned {counted} B (weights {} B, KV {} B, buffers {} B); \
             allocator holds {measured} B (weights {after_weights} B): {:+.4}%",
            planned.weight_bytes,
            planned.kv_cache_bytes,
            planned.activation_bytes,
            off * 100.0
        );
        assert!(off.abs() <= 0.001, "{file}: planned {counted} B, measured {measured} B ({:+.4}%)", off * 100.0);
        drop(model);
        drop(probe);
    }
}
