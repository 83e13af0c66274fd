//! Profile the GPU backend natively (Mesa lavapipe here, a CPU Vulkan driver: the native proxy
//! for the browser's SwiftShader): one decode token, a 5-token prefill, and per-op timings for
//! the shapes of SmolLM2-135M.
//!
//! ```text
//! cargo run --example gpu_profile [-- models/smollm2-135m-instruct-q4_1.gguf]
//! ```
//! `OLD_KERNELS=1` forces the shared-memory matmul kernels (the GPU choice) on a CPU adapter;
//! `ONLY_OPS=1` skips the whole-model timings; `CPU_TIME=1` reports process CPU time per op
//! instead of wall time (steadier on a loaded machine: lavapipe runs the shaders on our threads).
//!
//! Every op is timed as `reps` launches followed by one readback (`Compute::read`), minus the
//! cost of a readback alone, divided by `reps`: the throughput of back-to-back launches, which is
//! what a forward pass sees.

use std::time::Instant;

use futures::executor::block_on;
use hearth::backend::{WgpuDevice, init_wgpu_blocking};
use hearth::gguf::{GgmlType, GgufHeader};
use hearth::infer::gpu::Gpu;
use hearth::infer::{Activation, Attention, Compute, Model, Shape, load_weights};
use hearth::model::ModelConfig;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// CPU milliseconds this process has used (all threads: lavapipe runs the shaders on ours), from
/// `/proc/self/stat` (10 ms ticks); 0 where there is none. Robust to other load on the machine.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|v| v.parse().unwrap_or(0.0)).collect();
    if f.len() > 13 { (f[11] + f[12]) * 10.0 } else { 0.0 }
}

/// Milliseconds per launch of `op`, over `reps` launches and one readback of `sync` (the best of
/// three such runs).
fn time(gpu: &Gpu, sync: &<Gpu as Compute>::Buf, reps: usize, base: f64, mut op: impl FnMut()) -> f64 {
    op();
    block_on(gpu.read(sync, 0, 1)).unwrap();
    // The best of three: the machine may be shared.
    let mut best = f64::MAX;
    let c0 = cpu_ms();
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..reps {
            op();
        }
        block_on(gpu.read(sync, 0, 1)).unwrap();
        best = best.min(((ms(t) - base) / reps as f64).max(0.0));
    }
    if std::env::var("CPU_TIME").is_ok() {
        return (cpu_ms() - c0) / (3 * reps) as f64;
    }
    best
}

fn main() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, single-threaded here.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    let path = std::env::args().nth(1).unwrap_or_else(|| "models/smollm2-135m-instruct-q4_1.gguf".into());
    let only_ops = std::env::var("ONLY_OPS").is_ok();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let header = GgufHeader::parse_complete(&bytes).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let device = WgpuDevice::default();
    init_wgpu_blocking(&device, None).expect("a wgpu adapter");
    let gpu = Gpu::new(device.clone()).unwrap();
    // OLD_KERNELS=1: the shared-memory matmuls even on a CPU adapter (the "before").
    let row_kernels = gpu.row_kernels() && std::env::var_os("OLD_KERNELS").is_none();
    gpu.use_row_kernels(row_kernels);
    println!("{} (row kernels: {row_kernels})", gpu.describe());

    // Whole model.
    if !only_ops {
        let w = load_weights(&gpu, &cfg, &header, &bytes).unwrap();
        let mut model = Model::new(gpu, cfg.clone(), w, Shape::for_context(256)).unwrap();
        let prompt = [504u32, 3575, 282, 4649, 314];
        // Warm-up: compiles every pipeline.
        let first = block_on(model.next_greedy(&prompt)).unwrap();
        block_on(model.next_greedy(&[first])).unwrap();
        model.reset();
        let t = Instant::now();
        let mut next = block_on(model.next_greedy(&prompt)).unwrap();
        println!("prefill 5 tokens: {:.1} ms", ms(t));
        let n = 10;
        let t = Instant::now();
        let mut ids = vec![next];
        for _ in 0..n {
            next = block_on(model.next_greedy(&[next])).unwrap();
            ids.push(next);
        }
        let per = ms(t) / n as f64;
        println!("decode: {per:.1} ms/token ({:.2} tok/s), ids {ids:?}", 1e3 / per);
    }

    // Per op.
    let gpu = Gpu::new(device).unwrap();
    gpu.use_row_kernels(row_kernels);
    let (embd, ff, nv) = (cfg.n_embd as usize, cfg.n_ff as usize, cfg.n_vocab as usize);
    let (nh, nkv, hd) = (cfg.n_head, cfg.n_head_kv, cfg.head_dim);
    let big = nv.max(64 * ff);
    let x = gpu.upload_f32(&(0..big).map(|i| ((i % 97) as f32 - 48.0) * 0.01).collect::<Vec<_>>()).unwrap();
    let out = gpu.alloc(big).unwrap();
    let out2 = gpu.alloc(big).unwrap();
    let ids = gpu.alloc_ids(4).unwrap();
    let tiny = gpu.alloc(4).unwrap();
    // A readback alone.
    block_on(gpu.read(&tiny, 0, 1)).unwrap();
    let t = Instant::now();
    for _ in 0..20 {
        block_on(gpu.read(&tiny, 0, 1)).unwrap();
    }
    let base = ms(t) / 20.0;
    println!("readback alone: {base:.3} ms");
    let launch = time(&gpu, &tiny, 200, base, || gpu.add(&tiny, &tiny, 1));
    println!("trivial launch (add of 1): {launch:.3} ms");

    // Matmuls: the first 2-D tensor of each format, plus the shapes of the model.
    let mut seen: Vec<(GgmlType, usize, usize)> = Vec::new();
    let mut wanted = Vec::new();
    for t in header.tensors() {
        if t.dims.len() != 2 {
            continue;
        }
        let (cols, rows) = (t.dims[0] as usize, t.dims[1] as usize);
        let key = (t.ggml_type, rows, cols);
        if !seen.contains(&key) {
            seen.push(key);
            wanted.push(t.clone());
        }
    }
    if std::env::var("F32_TEST").is_ok() {
        let n = 2048;
        let data: Vec<u8> = (0..n * n).flat_map(|i| (((i % 13) as f32 - 6.0) * 0.1).to_le_bytes()).collect();
        let w = gpu.upload_weight("f32", GgmlType::F32, n, n, &data).unwrap();
        let m1 = time(&gpu, &tiny, 10, base, || gpu.matmul(&x, &w, 1, &out));
        println!("matmul F32 {n}x{n}: n=1 {m1:.3} ms ({:.2} GMAC/s)", (n * n) as f64 / m1 / 1e6);
    }
    for t in &wanted {
        let (cols, rows) = (t.dims[0] as usize, t.dims[1] as usize);
        let data = header.tensor_bytes(&bytes, &t.name).unwrap();
        let w = gpu.upload_weight(&t.name, t.ggml_type, rows, cols, data).unwrap();
        let reps = if rows * cols > 4_000_000 { 5 } else { 60 };
        let m1 = time(&gpu, &tiny, reps, base, || gpu.matmul(&x, &w, 1, &out));
        let gmac = (rows * cols) as f64 / m1 / 1e6;
        let m5 = time(&gpu, &tiny, reps.min(10), base, || gpu.matmul(&x, &w, 5, &out));
        let m64 = if rows * cols < 4_000_000 {
            time(&gpu, &tiny, 4, base, || gpu.matmul(&x, &w, 64, &out))
        } else {
            f64::NAN
        };
        println!(
            "matmul {:?} {rows}x{cols}: n=1 {m1:.3} ms ({gmac:.2} GMAC/s), n=5 {m5:.3} ms, n=64 {m64:.2} ms",
            t.ggml_type
        );
    }

    let norm = gpu.upload_f32(&vec![1.0; embd]).unwrap();
    let r = time(&gpu, &tiny, 100, base, || gpu.rms_norm(&x, &norm, 1, embd, 1e-5, &out));
    println!("rms_norm 1x{embd}: {r:.3} ms");
    let r = time(&gpu, &tiny, 50, base, || gpu.rms_norm(&x, &norm, 5, embd, 1e-5, &out));
    println!("rms_norm 5x{embd}: {r:.3} ms");
    let r = time(&gpu, &tiny, 100, base, || gpu.glu(&x, &x, ff, Activation::Silu, &out));
    println!("glu {ff}: {r:.3} ms");
    let r = time(&gpu, &tiny, 100, base, || gpu.add(&out, &x, embd));
    println!("add {embd}: {r:.3} ms");
    let r = time(&gpu, &tiny, 50, base, || gpu.argmax(&x, 0, nv, &ids, 0));
    println!("argmax {nv}: {r:.3} ms");
    let kvw = (nkv * hd) as usize;
    let cache = gpu.upload_f32(&(0..256 * kvw).map(|i| ((i % 89) as f32 - 44.0) * 0.01).collect::<Vec<_>>()).unwrap();
    for (pos, n) in [(10u32, 1usize), (100, 1), (10, 5)] {
        let a = Attention { n_head: nh, n_head_kv: nkv, head_dim: hd, pos0: pos, scale: 0.125, window: 0 };
        let r = time(&gpu, &tiny, 50, base, || gpu.attention(&x, &cache, &cache, n, a, &out2));
        println!("attention n={n} pos {pos}: {r:.3} ms");
    }
}
