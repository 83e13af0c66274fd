#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has its own tests
//! Greedy generation on the CPU backend against llama.cpp, on the three real models from PyPI:
//! for every case in `tests/golden/generate/<model>.json` (written by
//! `tools/llamacpp_generate.mjs` with node-llama-cpp 3.21.1), the greedy tokens must equal
//! llama.cpp's, and at every step the top-5 next-token sets must agree.
//!
//! "Equal" allows for llama.cpp's own arithmetic: its CPU variants round product inputs
//! differently (Q8 blocks on AVX2, AMX tiles on this machine's Sapphire Rapids build), and on
//! SmolLM2 its AVX2 and AMX builds already differ by 0.12 nats on the same prompt. So a case may
//! end early at a *near tie*: the step where our greedy token differs from llama.cpp's is
//! accepted only if ours is in llama.cpp's top 5 within [`TIE_NATS`] (or [`TIE_PROB`] in
//! probability) of its choice (after that
//! the continuations cannot be compared). A likely token of llama.cpp's (p > 2%) missing from our
//! top 5 — beyond the same tolerance at the edge of the set — fails, and so does matching fewer
//! than [`MIN_EQUAL`] of the model's tokens overall.
//!
//! Both CPU modes are checked: the quantized one the product runs (8-bit activations, as
//! llama.cpp's CPU backend) and the exact f32 reference. The quantized mode is also held to the
//! exact one teacher-forced on llama.cpp's sequences: at every step the quantized model's greedy
//! token must be within [`QUANT_NATS`] of the best token by the exact model's log-probabilities
//! or by llama.cpp's (whose products also use 8-bit activations: on SmolLM2 the two references
//! themselves disagree by 0.24 nats at a near tie, and the quantized mode sides with llama.cpp
//! there). The largest difference between the two modes' log-probabilities of the exact model's
//! top 5 is reported, not asserted: 8-bit activations move them by up to ~0.6 nats on Gemma 3
//! (llama.cpp's own 8-bit products are further than that from the exact mode), and how far
//! they may move is what the llama.cpp goldens above already bound.
//!
//! Models live in `$HEARTH_MODELS_DIR` (default `models/`); `./run test` downloads them. Missing
//! models fail the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::infer::{Compute, Cpu, CpuOptions, FileSource, KvCache, Model, Shape, load_model, read_header_from};
use hearth::model::ModelConfig;

/// Largest llama.cpp log-probability advantage of its token over ours at an accepted divergence.
const TIE_NATS: f64 = 0.35;
/// ... or largest probability advantage (flat distributions, where nats exaggerate).
const TIE_PROB: f64 = 0.03;
/// Largest log-probability difference between the quantized and the exact mode (two llama.cpp
/// builds already differ by up to ~0.12 nats at near ties).
const QUANT_NATS: f64 = 0.15;
/// Share of all golden tokens that must be reproduced exactly before any divergence.
const MIN_EQUAL: f64 = 0.5;
/// How far the f16 KV cache may move a log-probability from the f32 cache's (see
/// [`check_f16_kv_tracks_f32`]): measured at most 0.009 nats on SmolLM2 (128 steps), so 0.03
/// leaves room for the other models' larger caches while still catching a conversion error (a
/// wrong rounding or a dropped bit moves them by tenths).
const F16_KV_NATS: f64 = 0.03;

fn models_dir() -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED real-model generation: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("models")))
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let lse = logits.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
    logits.iter().map(|&v| v as f64 - lse).collect()
}

fn top(lp: &[f64], k: usize) -> Vec<(u32, f64)> {
    let mut idx: Vec<u32> = (0..lp.len() as u32).collect();
    idx.sort_by(|&a, &b| lp[b as usize].total_cmp(&lp[a as usize]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.into_iter().map(|i| (i, lp[i as usize])).collect()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn golden(stem: &str) -> serde_json::Value {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&fs::read(root.join(format!("tests/golden/generate/{stem}.json"))).unwrap()).unwrap()
}

/// The model on the CPU backend in the given mode, through the loader over the file on disk
/// (header first, then tensor by tensor).
fn load(dir: &std::path::Path, stem: &str, exact: bool) -> Model<Cpu> {
    load_with_kv(dir, stem, exact, KvCache::F32)
}

fn load_with_kv(dir: &std::path::Path, stem: &str, exact: bool, kv: KvCache) -> Model<Cpu> {
    let path = dir.join(format!("{stem}.gguf"));
    let file = FileSource::open(&path).unwrap_or_else(|e| panic!("{}: {e} (./run test downloads it)", path.display()));
    let header = block_on(read_header_from(&file)).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let cpu = Cpu::with_options(CpuOptions { exact, ..Cpu::new().options() });
    block_on(load_model(cpu, &cfg, &header, Shape { kv, ..Shape::for_context(256) }, &file, &())).unwrap()
}

fn check_model(stem: &str, exact: bool) {
    let Some(dir) = models_dir() else { return };
    let golden = golden(stem);
    let mut model = load(&dir, stem, exact);
    let mut max_dlp = 0f64;
    let (mut total_equal, mut total) = (0usize, 0usize);
    let mut problems = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let want = ids(&case["generated_ids"]);
        let tops = case["top5"].as_array().unwrap();
        model.reset();
        let mut got = Vec::new();
        let mut input = prompt.clone();
        for step in 0..want.len() {
            let logits = block_on(model.next_logits(&input)).unwrap();
            let lp = log_softmax(&logits);
            let ours = top(&lp, 6);
            let theirs: Vec<(u32, f64)> = tops[step]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap()))
                .collect();
            for &(id, their_lp) in &theirs {
                max_dlp = max_dlp.max((lp[id as usize] - their_lp).abs());
            }
            // Every likely llama.cpp top-5 token is in our top 5, or within TIE_NATS of our 5th.
            for &(id, their_lp) in &theirs {
                let in_ours = ours[..5].iter().any(|&(o, _)| o == id);
                if their_lp > (0.02f64).ln() && !in_ours && (lp[id as usize] - ours[4].1).abs() > TIE_NATS {
                    problems.push(format!(
                        "{stem} {:?} step {step}: llama.cpp top-5 token {id} ({their_lp:.3}) has {:.3} here, outside our top 5 {:?}",
                        case["kind"], lp[id as usize], &ours[..5]
                    ));
                }
            }
            let next = ours[0].0;
            got.push(next);
            if next != want[step] {
                let ours_there = theirs.iter().find(|&&(id, _)| id == next).map(|&(_, l)| l);
                let margin = ours_there.map(|l| theirs[0].1 - l);
                let dp = ours_there.map(|l| theirs[0].1.exp() - l.exp());
                if margin.is_some_and(|m| m < TIE_NATS) || dp.is_some_and(|d| d < TIE_PROB) {
                    eprintln!(
                        "{stem} {}: near tie at step {step} ({:.3} nats in llama.cpp): {next} here, {} there",
                        case["kind"],
                        margin.unwrap(),
                        want[step]
                    );
                    break;
                }
                problems.push(format!(
                    "{stem} {:?} step {step}: greedy {next} here, {} in llama.cpp (ours {:?}, theirs {:?})",
                    case["kind"],
                    want[step],
                    &ours[..3],
                    &theirs[..3]
                ));
                break;
            }
            input = vec![next];
        }
        let equal = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
        eprintln!("{stem} {}: {equal} of {} tokens equal", case["kind"], want.len());
        total_equal += equal;
        total += want.len();
    }
    eprintln!("{stem}: max |log p - log p(llama.cpp)| over llama.cpp's top 5, while in step: {max_dlp:.3}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        total_equal as f64 >= MIN_EQUAL * total as f64,
        "{stem}: only {total_equal} of {total} greedy tokens equal llama.cpp's"
    );
}

/// The quantized mode against the exact one, teacher-forced on llama.cpp's greedy sequences:
/// the prompt as one batched step (the prefill path), then one token at a time (the decode path).
fn check_quantized_tracks_exact(stem: &str) {
    let Some(dir) = models_dir() else { return };
    let golden = golden(stem);
    let (mut exact, mut quant) = (load(&dir, stem, true), load(&dir, stem, false));
    let (mut worst_choice, mut worst_top) = (0f64, 0f64);
    let mut problems = Vec::new();
    for case in golden["cases"].as_array().unwrap() {
        let prompt = ids(&case["prompt_ids"]);
        let generated = ids(&case["generated_ids"]);
        let tops = case["top5"].as_array().unwrap();
        exact.reset();
        quant.reset();
        // Prompt first (batched), then one token at a time (the decode path).
        let mut input = prompt.clone();
        for (step, &next) in generated.iter().enumerate() {
            let le = log_softmax(&block_on(exact.next_logits(&input)).unwrap());
            let lq = log_softmax(&block_on(quant.next_logits(&input)).unwrap());
            let te = top(&le, 5);
            let chosen = top(&lq, 1)[0].0;
            let gap = te[0].1 - le[chosen as usize];
            // llama.cpp's log-probability of our choice, when it is in its top 5.
            let theirs: Vec<(u32, f64)> = tops[step]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (p[0].as_u64().unwrap() as u32, p[1].as_f64().unwrap()))
                .collect();
            let gap_llama =
                theirs.iter().find(|&&(id, _)| id == chosen).map_or(f64::INFINITY, |&(_, l)| theirs[0].1 - l);
            worst_choice = worst_choice.max(gap.min(gap_llama));
            if gap > QUANT_NATS && gap_llama > QUANT_NATS {
                problems.push(format!(
                    "{stem} {} step {step}: quantized picks {chosen}, {gap:.3} nats below exact's best, {gap_llama:.3} below llama.cpp's",
                    case["kind"]
                ));
            }
            for &(id, l) in &te {
                worst_top = worst_top.max((lq[id as usize] - l).abs());
            }
            input = vec![next];
        }
    }
    eprintln!(
        "{stem}: quantized vs exact: worst choice gap {worst_choice:.3} nats, worst top-5 log p difference {worst_top:.3}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The f16 KV cache against the f32 one, teacher-forced on llama.cpp's sequences (two cases): the
/// greedy token within [`F16_KV_NATS`] of the f32 model's best, the f32 model's top-5
/// log-probabilities within [`F16_KV_NATS`], and exactly half the KV cache's bytes held. Both in
/// the exact mode, which isolates the cache's rounding: in the quantized mode any perturbation
/// also flips 8-bit activation roundings downstream, which moves top-5 log-probabilities by up
/// to ~0.9 nats between two runs whatever the perturbation (as the quantized mode moves them
/// against the exact one), so that mode's figures would measure the activations, not the cache.
fn check_f16_kv_tracks_f32(stem: &str) {
    let Some(dir) = models_dir() else { return };
    let golden = golden(stem);
    let (mut f32m, mut f16m) = (load(&dir, stem, true), load_with_kv(&dir, stem, true, KvCache::F16));
    let cfg = f32m.config().clone();
    let kv_f32 = 2 * u64::from(cfg.n_layer) * 256 * cfg.kv_dim() * 4;
    assert_eq!(f32m.compute().resident_bytes() - f16m.compute().resident_bytes(), kv_f32 / 2, "{stem}: bytes");
    let (mut worst_top, mut worst_choice, mut steps) = (0f64, 0f64, 0usize);
    for case in golden["cases"].as_array().unwrap().iter().take(2) {
        f32m.reset();
        f16m.reset();
        let mut input = ids(&case["prompt_ids"]);
        for &next in &ids(&case["generated_ids"]) {
            let l32 = log_softmax(&block_on(f32m.next_logits(&input)).unwrap());
            let l16 = log_softmax(&block_on(f16m.next_logits(&input)).unwrap());
            let t32 = top(&l32, 5);
            let chosen = top(&l16, 1)[0].0;
            worst_choice = worst_choice.max(t32[0].1 - l32[chosen as usize]);
            for &(id, l) in &t32 {
                worst_top = worst_top.max((l16[id as usize] - l).abs());
            }
            steps += 1;
            input = vec![next];
        }
    }
    eprintln!(
        "{stem}: f16 vs f32 KV over {steps} steps: worst choice gap {worst_choice:.4}, worst top-5 log p {worst_top:.4}"
    );
    assert!(worst_choice <= F16_KV_NATS && worst_top <= F16_KV_NATS, "{stem}: f16 KV cache too far from f32");
}

#[test]
fn smollm2_f16_kv_cache_tracks_f32() {
    check_f16_kv_tracks_f32("smollm2-135m-instruct-q4_1");
}

#[test]
fn gemma3_f16_kv_cache_tracks_f32() {
    check_f16_kv_tracks_f32("gemma-3-270m-q4_k_m");
}

#[test]
fn qwen2_f16_kv_cache_tracks_f32() {
    check_f16_kv_tracks_f32("qwen2.5-coder-0.5b-instruct");
}

#[test]
fn smollm2_greedy_matches_llama_cpp() {
    check_model("smollm2-135m-instruct-q4_1", false);
}

#[test]
fn gemma3_greedy_matches_llama_cpp() {
    check_model("gemma-3-270m-q4_k_m", false);
}

#[test]
fn qwen2_greedy_matches_llama_cpp() {
    check_model("qwen2.5-coder-0.5b-instruct", false);
}

#[test]
fn smollm2_exact_greedy_matches_llama_cpp() {
    check_model("smollm2-135m-instruct-q4_1", true);
}

#[test]
fn gemma3_exact_greedy_matches_llama_cpp() {
    check_model("gemma-3-270m-q4_k_m", true);
}

#[test]
fn qwen2_exact_greedy_matches_llama_cpp() {
    check_model("qwen2.5-coder-0.5b-instruct", true);
}

#[test]
fn smollm2_quantized_tracks_exact() {
    check_quantized_tracks_exact("smollm2-135m-instruct-q4_1");
}

#[test]
fn gemma3_quantized_tracks_exact() {
    check_quantized_tracks_exact("gemma-3-270m-q4_k_m");
}

#[test]
fn qwen2_quantized_tracks_exact() {
    check_quantized_tracks_exact("qwen2.5-coder-0.5b-instruct");
}
