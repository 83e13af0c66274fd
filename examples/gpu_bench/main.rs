//! Bench the GPU engine (native wgpu: Vulkan on Linux) on a whole GGUF model, from token ids (no
//! tokenizer): load time, prefill and greedy decode speed, what a decoded token costs, and the
//! first greedy ids; `--backend cpu` runs the CPU engine the same way for comparison. One JSON
//! object on stdout.
//!
//! ```text
//! cargo run --release --example gpu_bench -- --model FILE [--backend wgpu|cpu]
//!     [--family auto|subgroup|portable|rows|f16] [--api vulkan|auto] [--tasks-max N] [--graphs auto|on|off]
//!     [--prompt-len 100] [--gen 32] [--reps 3] [--context 256] [--check STEPS]
//! cargo run --release --example gpu_bench -- --extract-header REAL.gguf HEADER.bin
//! cargo run --release --example gpu_bench -- --synthesize HEADER.bin OUT.gguf [--seed N]
//! ```
//! - `--family`: the kernel family ([`Kernels`]). `auto` is the engine's own choice for the
//!   adapter (the barrier-free `Rows` kernels on a CPU adapter, the shared-memory `Matvec`/`Tiled`
//!   ones on a GPU); `rows` and `portable` (or `matvec`) force one.
//! - `--tasks-max`: launches cubecl records before it submits (default
//!   [`TASKS_PER_SUBMISSION`], what the browser device uses; cubecl's own default is 32); a
//!   readback submits too.
//! - `--graphs`: decode steps recorded once and replayed (`on`), or launched op by op (`off`);
//!   `auto`, the engine's default, is on for a GPU and off for a CPU adapter
//!   (`Gpu::set_decode_graphs`).
//! - `--check STEPS`: after the bench, the GPU and the CPU engine are fed the same ids (an
//!   8-token prompt, then STEPS tokens of the CPU engine's greedy sequence) and every step's
//!   logits compared: `max |gpu - cpu| / max |cpu|`.
//! - `--extract-header` / `--synthesize`: a GGUF with a real file's header (metadata, vocabulary,
//!   tensor infos) and random valid blocks of the same formats and sizes (see `synth.rs`): the
//!   shapes of a real model, carried as its header alone.
//!
//! Dispatches (the GPU backend's own launch count), submissions (cubecl's rules applied to
//! them), queue writes, readbacks and weight bytes are counted per decoded token and per layer
//! (`counted.rs`).

mod counted;
mod synth;

use std::process::ExitCode;
use std::time::Instant;

use futures::executor::block_on;
use hearth::backend::{WgpuBackend, WgpuDevice, init_wgpu_blocking};
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::{Gpu, GpuFeatures, KernelTime, Kernels, TASKS_PER_SUBMISSION};
use hearth::infer::{Compute, Cpu, Model, Shape, load_weights};
use hearth::model::ModelConfig;
use serde_json::{Value, json};

use counted::{Counted, Parts};

struct Args {
    model: String,
    backend: String,
    family: String,
    api: String,
    tasks_max: Option<usize>,
    graphs: String,
    prompt_len: usize,
    gen_len: usize,
    reps: usize,
    context: usize,
    check: usize,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        backend: "wgpu".into(),
        family: "auto".into(),
        api: "vulkan".into(),
        tasks_max: None,
        graphs: "auto".into(),
        prompt_len: 100,
        gen_len: 32,
        reps: 3,
        context: 256,
        check: 0,
    };
    fn num(flag: &str, v: Option<String>) -> Result<usize, String> {
        v.ok_or(format!("{flag} needs a value"))?.parse().map_err(|e| format!("{flag}: {e}"))
    }
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--model" => a.model = it.next().ok_or("--model needs a value")?,
            "--backend" => a.backend = it.next().ok_or("--backend needs a value")?,
            "--family" => a.family = it.next().ok_or("--family needs a value")?,
            "--api" => a.api = it.next().ok_or("--api needs a value")?,
            "--tasks-max" => a.tasks_max = Some(num(&flag, it.next())?),
            "--graphs" => a.graphs = it.next().ok_or("--graphs needs a value")?,
            "--prompt-len" => a.prompt_len = num(&flag, it.next())?,
            "--gen" => a.gen_len = num(&flag, it.next())?,
            "--reps" => a.reps = num(&flag, it.next())?.max(1),
            "--context" => a.context = num(&flag, it.next())?,
            "--check" => a.check = num(&flag, it.next())?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.model.is_empty() {
        return Err("--model FILE is required".into());
    }
    if a.prompt_len == 0 || a.gen_len == 0 {
        return Err("--prompt-len and --gen must be at least 1".into());
    }
    a.context = a.context.max(a.prompt_len + a.gen_len + 2);
    Ok(a)
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// `n` token ids spread over the vocabulary (away from the special tokens at its ends).
fn prompt_ids(n: usize, n_vocab: u32) -> Vec<u32> {
    let span = n_vocab.clamp(2, 32_000) - 1;
    (0..n as u32).map(|i| 1 + (i * 7919 + 13) % span).collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// The wgpu device (Vulkan unless `--api auto`).
fn device(a: &Args) -> Result<WgpuDevice, String> {
    let api = match a.api.as_str() {
        "vulkan" => WgpuBackend::Vulkan,
        "auto" => WgpuBackend::Auto,
        other => return Err(format!("--api {other}: expected vulkan or auto")),
    };
    let device = WgpuDevice::default().on(api);
    let tasks_max = a.tasks_max.unwrap_or(TASKS_PER_SUBMISSION);
    let setup =
        init_wgpu_blocking(&device, Some(tasks_max)).map_err(|e| format!("no wgpu adapter on {}: {e}", a.api))?;
    let info = setup.adapter.get_info();
    let sizes = (info.subgroup_min_size, info.subgroup_max_size);
    let _ = FEATURES.set(GpuFeatures::of_wgpu(setup.device.features(), sizes));
    Ok(device)
}

/// The optional features of the device [`device`] made.
static FEATURES: std::sync::OnceLock<GpuFeatures> = std::sync::OnceLock::new();

/// The GPU engine on `device` with `--family` applied, and the family's name.
fn gpu(device: &WgpuDevice, a: &Args) -> Result<(Gpu, String), String> {
    let features = FEATURES.get().copied().unwrap_or_default();
    let gpu = Gpu::with_features(device.clone(), features, u64::MAX).map_err(|e| e.to_string())?;
    let name = if a.family == "matvec" { "portable" } else { a.family.as_str() };
    gpu.set_kernels(Kernels::parse(name).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    match a.graphs.as_str() {
        "auto" => {}
        "on" | "off" => gpu.set_decode_graphs(a.graphs == "on").map_err(|e| e.to_string())?,
        other => return Err(format!("--graphs {other}: expected auto, on or off")),
    }
    let family = format!("{:?}", gpu.kernels()).to_lowercase();
    Ok((gpu, family.to_string()))
}

/// Loads `file` onto `compute`: the one place the bench calls the loader.
fn load<C: Compute>(compute: C, file: &[u8], context: usize) -> Result<Model<C>, String> {
    let header = GgufHeader::parse_complete(file).map_err(|e| e.to_string())?;
    let cfg = ModelConfig::from_gguf(&header).map_err(|e| e.to_string())?;
    let weights = load_weights(&compute, &cfg, &header, file).map_err(|e| e.to_string())?;
    Model::new(compute, cfg, weights, Shape::for_context(context)).map_err(|e| e.to_string())
}

/// The bench proper (see the module docs).
fn bench<C: Parts>(compute: C, family: &str, a: &Args, file: &[u8]) -> Result<Value, String> {
    let backend = compute.describe();
    let t = Instant::now();
    let tasks_max = a.tasks_max.unwrap_or(TASKS_PER_SUBMISSION);
    let mut model = load(Counted::new(compute, tasks_max), file, a.context)?;
    // Loading enqueues uploads; wait for them so the time is the load's.
    let header = GgufHeader::parse_complete(file).map_err(|e| e.to_string())?;
    block_on(model.compute().read(&model.compute().alloc(1).map_err(|e| e.to_string())?, 0, 1))
        .map_err(|e| e.to_string())?;
    let load_ms = ms(t);
    let cfg = model.config().clone();
    let prompt = prompt_ids(a.prompt_len, cfg.n_vocab);
    let err = |e: hearth::infer::InferError| e.to_string();

    // Warm-up: compiles every pipeline (prefill and decode shapes).
    let first = block_on(model.next_greedy(&prompt)).map_err(err)?;
    block_on(model.next_greedy(&[first])).map_err(err)?;
    model.reset();
    model.compute().take();

    let (mut prefill, mut decode, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pre_counts, mut dec_counts) = (None, None);
    for _ in 0..a.reps {
        model.reset();
        let t = Instant::now();
        let mut next = block_on(model.next_greedy(&prompt)).map_err(err)?;
        prefill.push(ms(t));
        pre_counts.get_or_insert(model.compute().take());
        ids = vec![next];
        let t = Instant::now();
        for _ in 0..a.gen_len {
            next = block_on(model.next_greedy(&[next])).map_err(err)?;
            ids.push(next);
        }
        decode.push(ms(t));
        dec_counts.get_or_insert(model.compute().take());
    }
    ids.truncate(a.gen_len);
    let (pre, dec) = (pre_counts.unwrap_or_default(), dec_counts.unwrap_or_default());
    let per = |v: u64| v as f64 / a.gen_len as f64;
    // The logits after the prompt must be numbers (a synthetic file must not overflow).
    model.reset();
    let logits = block_on(model.next_logits(&prompt)).map_err(err)?;
    let finite = logits.iter().all(|v| v.is_finite());
    let max_logit = logits.iter().fold(0f32, |m, v| m.max(v.abs()));

    let kernel_times = profile(&mut model, &prompt, a.gen_len.min(8))?;

    let decode_tok_s: Vec<f64> = decode.iter().map(|d| a.gen_len as f64 / d * 1e3).collect();
    let prefill_tok_s: Vec<f64> = prefill.iter().map(|p| a.prompt_len as f64 / p * 1e3).collect();
    let weight_bytes_per_token = per(dec.weight_bytes);
    let dispatches = per(dec.dispatches);
    Ok(json!({
        "file": a.model,
        "backend": backend,
        "api": if a.backend == "cpu" { "cpu".to_string() } else { a.api.clone() },
        "family": family,
        "tasks_max": tasks_max,
        "decode_graphs": model.compute().inner.decode_graphs(),
        "arch": cfg.arch.name(),
        "n_layer": cfg.n_layer,
        "n_vocab": cfg.n_vocab,
        "file_tensor_bytes": header.tensor_bytes_total(),
        "device_weight_bytes": model.weight_bytes(),
        "load_ms": load_ms,
        "prompt_tokens": a.prompt_len,
        "prefill_ms": prefill,
        "prefill_tok_s": median(&prefill_tok_s),
        "decode_tokens": a.gen_len,
        "decode_ms": decode,
        "decode_tok_s": median(&decode_tok_s),
        "decode_tok_s_best": decode_tok_s.iter().copied().fold(0.0, f64::max),
        "dispatches_per_token": dispatches,
        "dispatches_per_layer": (dispatches) / f64::from(cfg.n_layer.max(1)),
        "queue_writes_per_token": per(dec.writes),
        "readbacks_per_token": per(dec.readbacks),
        "submissions_per_token": per(dec.submissions),
        "prefill_dispatches": pre.dispatches,
        "weight_bytes_per_token": weight_bytes_per_token,
        "weight_gb_per_s": weight_bytes_per_token * median(&decode_tok_s) / 1e9,
        "kernel_times": kernel_times,
        "greedy_ids": ids,
        "logits_finite": finite,
        "max_abs_logit": max_logit,
    }))
}

/// Per-kernel time of `tokens` greedy decode steps after `prompt` (see `Gpu::profile_kernels`):
/// a table on stderr and, per kernel variant, dispatches and milliseconds per token.
fn profile<C: Parts>(model: &mut Model<Counted<C>>, prompt: &[u32], tokens: usize) -> Result<Value, String> {
    let err = |e: hearth::infer::InferError| e.to_string();
    model.reset();
    let mut next = block_on(model.next_greedy(prompt)).map_err(err)?;
    if !model.compute().inner.profile_kernels(true) {
        return Ok(Value::Null);
    }
    for _ in 0..tokens {
        next = block_on(model.next_greedy(&[next])).map_err(err)?;
    }
    let (times, timestamps) = model.compute().inner.kernel_times();
    model.compute().inner.profile_kernels(false);
    model.compute().take();
    let per = tokens as f64;
    let total: f64 = times.iter().map(|t| t.ms).sum::<f64>() / per;
    let best = |t: &KernelTime| t.min_ms * t.dispatches as f64 / per;
    let total_best: f64 = times.iter().map(best).sum();
    let clock = if timestamps { "timestamp queries" } else { "host clock, one submission per dispatch" };
    eprintln!(
        "per-kernel time per decoded token ({clock}; {total:.2} ms in all, {total_best:.2} ms at each kernel's best):"
    );
    eprintln!("{:>9} {:>9} {:>6} {:>9}  kernel x workgroups", "ms/tok", "best", "share", "disp/tok");
    for t in &times {
        let ms = t.ms / per;
        let share = 100.0 * best(t) / total_best.max(1e-9);
        eprintln!("{ms:9.3} {:9.3} {share:5.1}% {:9.2}  {}", best(t), t.dispatches as f64 / per, t.kernel);
    }
    let rows: Vec<Value> = times
        .iter()
        .map(|t| {
            json!({
                "kernel": t.kernel,
                "dispatches_per_token": t.dispatches as f64 / per,
                "ms_per_token": t.ms / per,
                "best_ms_per_token": best(t),
            })
        })
        .collect();
    Ok(
        json!({ "clock": clock, "tokens": tokens, "ms_per_token": total, "best_ms_per_token": total_best, "kernels": rows }),
    )
}

/// The GPU and CPU engines teacher-forced along the CPU engine's greedy ids (see `--check`).
fn check(gpu: Gpu, a: &Args, file: &[u8]) -> Result<Value, String> {
    let err = |e: hearth::infer::InferError| e.to_string();
    let mut g = load(gpu, file, a.context)?;
    let mut c = load(Cpu::exact(), file, a.context)?;
    let mut ids = prompt_ids(8, g.config().n_vocab);
    let (mut diffs, mut agree) = (Vec::new(), 0usize);
    for step in 0..=a.check {
        let feed = if step == 0 { ids.clone() } else { vec![*ids.last().unwrap_or(&0)] };
        let want = block_on(c.next_logits(&feed)).map_err(err)?;
        let got = block_on(g.next_logits(&feed)).map_err(err)?;
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
        let diff = want.iter().zip(&got).fold(0f32, |m, (w, v)| m.max((w - v).abs()));
        diffs.push(f64::from(diff / scale));
        let argmax = |v: &[f32]| v.iter().enumerate().fold(0, |b, (i, x)| if *x > v[b] { i } else { b });
        let next = argmax(&want);
        agree += usize::from(argmax(&got) == next);
        ids.push(next as u32);
    }
    let max = diffs.iter().copied().fold(0.0, f64::max);
    Ok(json!({
        "check_steps": diffs.len(),
        "check_rel_diff_per_step": diffs,
        "check_max_rel_diff": max,
        "check_argmax_agree": agree,
        "check_within_1e-3": max <= 1e-3,
    }))
}

fn run(args: Vec<String>) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("--extract-header") => {
            let [_, input, output] = &args[..] else { return Err("--extract-header IN.gguf OUT.bin".into()) };
            let file = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
            let prefix = synth::header_prefix(&file)?;
            std::fs::write(output, &prefix).map_err(|e| format!("{output}: {e}"))?;
            return Ok(json!({ "header": output, "bytes": prefix.len() }).to_string());
        }
        Some("--synthesize") => {
            let (input, output, seed) = match &args[..] {
                [_, i, o] => (i, o, 1),
                [_, i, o, flag, s] if flag == "--seed" => (i, o, s.parse().map_err(|e| format!("--seed: {e}"))?),
                _ => return Err("--synthesize HEADER.bin OUT.gguf [--seed N]".into()),
            };
            let prefix = std::fs::read(input).map_err(|e| format!("{input}: {e}"))?;
            let t = Instant::now();
            let f = std::fs::File::create(output).map_err(|e| format!("{output}: {e}"))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 22, f);
            let bytes = synth::synthesize(&prefix, seed, &mut w)?;
            std::io::Write::flush(&mut w).map_err(|e| format!("{output}: {e}"))?;
            return Ok(json!({ "synthesized": output, "bytes": bytes, "ms": ms(t) }).to_string());
        }
        _ => {}
    }
    let a = parse(args.into_iter())?;
    let file = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    match a.backend.as_str() {
        "cpu" => bench(Cpu::new(), "cpu", &a, &file).map(|v| v.to_string()),
        "wgpu" => {
            let device = device(&a)?;
            let (g, family) = gpu(&device, &a)?;
            let mut out = bench(g, &family, &a, &file)?;
            if a.check > 0 {
                let (g, _) = gpu(&device, &a)?;
                let c = check(g, &a, &file)?;
                if let (Some(o), Some(c)) = (out.as_object_mut(), c.as_object()) {
                    o.extend(c.clone());
                }
            }
            Ok(out.to_string())
        }
        other => Err(format!("--backend {other}: expected wgpu or cpu")),
    }
}

fn main() -> ExitCode {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, single-threaded here.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    match run(std::env::args().skip(1).collect()) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
