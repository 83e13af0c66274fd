//! Generate text from a GGUF file natively, on the CPU backend or on native wgpu.
//!
//! ```text
//! cargo run --example generate -- --model models/smollm2-135m-instruct-q4_1.gguf \
//!     --prompt "The capital of France is" --max-tokens 32 --temperature 0 [--backend cpu|wgpu] [--chat] \
//!     [--exact] [--threads N]   (CPU: the f32 reference mode; threads per matrix product) [--ignore-eos]
//! ```
//! `HEARTH_CPU_PROFILE=1` prints the CPU backend's time per op category and token on stderr at
//! the end; `HEARTH_CPU_NO_AVX2=1` runs the baseline kernels instead of the AVX2 ones.
//! `--ignore-eos` keeps generating past end-of-generation tokens, so benchmarks always time
//! `--max-tokens` tokens (`./run bench native`).
//! The model is read with the loader (header first, then tensor by tensor from the file, with
//! upload progress on stderr). Tokens stream to stderr; the last line on stdout is one JSON object: text, prompt_ids,
//! generated_ids, ttft_ms, prefill and decode tok/s, backend. Errors exit with status 1 and the
//! error's message.

use std::process::ExitCode;
use std::time::Instant;

use futures::executor::block_on;
use hearth::infer::{
    Compute, Cpu, CpuOptions, FileSource, GenerateParams, LoadEvents, SamplerParams, Shape, generate, load_model,
    read_header_from,
};
use hearth::model::ModelConfig;
use hearth::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

struct Args {
    model: String,
    prompt: String,
    max_tokens: usize,
    temperature: f32,
    seed: Option<u64>,
    backend: String,
    chat: bool,
    context: usize,
    ignore_eos: bool,
    /// CPU: the exact f32 mode instead of quantized activations.
    exact: bool,
    /// CPU: threads per matrix product (0: the machine's cores).
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        prompt: String::new(),
        max_tokens: 32,
        temperature: 0.0,
        seed: None,
        backend: "cpu".into(),
        chat: false,
        context: 1024,
        ignore_eos: false,
        exact: false,
        threads: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = val()?,
            "--prompt" => a.prompt = val()?,
            "--max-tokens" => a.max_tokens = val()?.parse().map_err(|e| format!("--max-tokens: {e}"))?,
            "--temperature" => a.temperature = val()?.parse().map_err(|e| format!("--temperature: {e}"))?,
            "--seed" => a.seed = Some(val()?.parse().map_err(|e| format!("--seed: {e}"))?),
            "--backend" => a.backend = val()?,
            "--context" => a.context = val()?.parse().map_err(|e| format!("--context: {e}"))?,
            "--chat" => a.chat = true,
            "--ignore-eos" => a.ignore_eos = true,
            "--exact" => a.exact = true,
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.model.is_empty() {
        return Err("--model FILE is required".into());
    }
    Ok(a)
}

/// Upload progress as a percentage on stderr, every 10%.
struct Progress;

impl LoadEvents for Progress {
    fn upload_progress(&self, loaded: u64, total: u64) {
        let percent = loaded * 100 / total.max(1);
        let before = loaded.saturating_sub(total / 100) * 100 / total.max(1);
        if loaded == total || percent / 10 != before / 10 {
            eprint!("\rloading {percent}%{}", if loaded == total { "\n" } else { "" });
        }
    }
}

fn run<C: Compute>(compute: C, a: &Args) -> Result<String, String> {
    let file = FileSource::open(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    let header = block_on(read_header_from(&file)).map_err(|e| format!("{}: {e}", a.model))?;
    let cfg = ModelConfig::from_gguf(&header).map_err(|e| e.to_string())?;
    let tok = Tokenizer::from_gguf(&header).map_err(|e| e.to_string())?;
    let backend = compute.describe();
    let t0 = Instant::now();
    let shape = Shape::for_context(a.context);
    let mut model = block_on(load_model(compute, &cfg, &header, shape, &file, &Progress)).map_err(|e| e.to_string())?;
    let arch = cfg.arch.name();
    let load_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let text = if a.chat {
        let t = ChatTemplate::detect(tok.chat_template(), Some(arch)).map_err(|e| e.to_string())?;
        t.render(&[ChatMessage::new("user", a.prompt.clone())], true).map_err(|e| e.to_string())?
    } else {
        a.prompt.clone()
    };
    let ids = tok.encode(&text, true, true);
    let params = GenerateParams {
        max_tokens: a.max_tokens,
        sampler: SamplerParams { temperature: a.temperature, seed: a.seed, ..SamplerParams::default() },
        ignore_eog: a.ignore_eos,
        ..GenerateParams::default()
    };
    let start = Instant::now();
    let now = move || start.elapsed().as_secs_f64() * 1000.0;
    let mut on_token = |t: &hearth::infer::TokenEvent<'_>| {
        eprint!("{}", t.text);
        true
    };
    let g = block_on(generate(&mut model, &tok, &ids, &params, &now, &mut on_token)).map_err(|e| e.to_string())?;
    eprintln!();
    Ok(serde_json::json!({
        "text": g.text,
        "prompt_ids": g.prompt_ids,
        "prompt_tokens": g.prompt_ids.len(),
        "generated_ids": g.generated_ids,
        "stop_reason": g.stop_reason.as_str(),
        "load_ms": load_ms,
        "ttft_ms": g.timings.ttft_ms,
        "prefill_tok_s": g.timings.prefill_tok_s(),
        "decode_tok_s": g.timings.decode_tok_s(),
        "backend": backend,
        "weight_bytes": model.weight_bytes(),
    })
    .to_string())
}

fn main() -> ExitCode {
    let result = parse().and_then(|a| match a.backend.as_str() {
        "cpu" => run(Cpu::with_options(CpuOptions { exact: a.exact, threads: a.threads }), &a),
        "wgpu" => {
            let device = hearth::backend::WgpuDevice::default();
            hearth::backend::init_wgpu_blocking(&device, None).map_err(|e| format!("no wgpu adapter: {e}"))?;
            let gpu = hearth::infer::gpu::Gpu::new(device).map_err(|e| e.to_string())?;
            run(gpu, &a)
        }
        other => Err(format!("--backend {other}: expected cpu or wgpu")),
    });
    match result {
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
