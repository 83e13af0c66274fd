#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the browser tier has tests/js/openai.test.mjs
//! Multi-turn KV reuse: a model keeps the ids its KV cache holds, and the next generation keeps
//! the longest prefix it shares with its prompt and evaluates only the rest. Along one
//! conversation (a generation cancelled after three tokens, a turn continuing after an EOS, a
//! generation whose prompt extends the cache, an edit in the middle of the history, a prompt that
//! is a strict prefix of the cache, the same prompt again), the logits of every token the model
//! with reuse evaluates must be within 1e-3 (max abs difference over max abs logit) of a fresh
//! model's teacher-forced over the whole conversation, and the cache must hold exactly the ids
//! it says. On the CPU engine (exact and quantized) and on every GPU kernel family (lavapipe
//! here), over random-weight fixtures of the three architectures (gemma3's sliding window
//! included).
//!
//! Fixtures live in `$HEARTH_FIXTURES_DIR` (default `.cache/fixtures`; `./run test` writes them);
//! missing files fail the test unless `HEARTH_SKIP_REAL_MODELS=1`, no adapter fails the GPU test
//! unless `HEARTH_SKIP_GPU=1`.

mod common;

use std::fs;
use std::path::PathBuf;

use futures::executor::block_on;
use hearth::gguf::GgufHeader;
use hearth::infer::gpu::{Gpu, Kernels, TASKS_PER_SUBMISSION};
use hearth::infer::{
    Compute, Cpu, GenerateParams, Generation, KvCache, Model, Shape, StopReason, generate, load_weights,
};
use hearth::model::ModelConfig;
use hearth::tokenizer::Tokenizer;

const TOLERANCE: f64 = 1e-3;
const FIXTURES: [&str; 3] = ["llama-f32.gguf", "qwen2-q8_0.gguf", "gemma3-q4_0.gguf"];
/// A prefill step of 16 tokens: the turns below cross step boundaries at odd offsets.
const SHAPE: Shape = Shape { context: 192, batch: 16, logit_rows: 16, kv: KvCache::F32 };

fn fixture(name: &str) -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HEARTH_FIXTURES_DIR").map_or_else(|| root.join(".cache/fixtures"), PathBuf::from);
    let path = dir.join(name);
    Some(fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (python3 tools/make_fixtures.py)", path.display())))
}

fn load<C: Compute>(compute: C, file: &[u8]) -> Model<C> {
    let header = GgufHeader::parse_complete(file).unwrap();
    let cfg = ModelConfig::from_gguf(&header).unwrap();
    let weights = load_weights(&compute, &cfg, &header, file).unwrap();
    Model::new(compute, cfg, weights, SHAPE).unwrap()
}

/// `n` ordinary token ids (no end-of-generation token), different for each `seed`.
fn words(tok: &Tokenizer, n_vocab: u32, seed: u32, n: usize) -> Vec<u32> {
    (0..n as u32)
        .map(|i| 1 + (i.wrapping_mul(7919) + seed.wrapping_mul(104_729) + 13) % (n_vocab.min(32_000) - 1))
        .map(|id| if tok.is_eog(id) { id + 1 } else { id })
        .collect()
}

/// Max abs difference over max abs value of one row.
fn rel_err(got: &[f32], want: &[f32]) -> f64 {
    let scale = want.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let err = got.iter().zip(want).fold(0f64, |m, (&a, &b)| m.max((f64::from(a) - f64::from(b)).abs()));
    err / scale.max(1e-30)
}

/// One conversation's checks on `reused` against `fresh` (same engine, same weights).
struct Conversation<'a, C: Compute> {
    reused: Model<C>,
    fresh: Model<C>,
    tok: &'a Tokenizer,
    label: String,
    worst: f64,
}

impl<C: Compute> Conversation<'_, C> {
    /// Teacher-forces `ids` on the model with reuse (only the tokens after the kept prefix are
    /// evaluated) and checks their logits against a fresh model's over all of `ids`; returns how
    /// many tokens the cache kept.
    fn teacher(&mut self, ids: &[u32], what: &str) -> usize {
        let nv = self.reused.config().n_vocab as usize;
        let kept = self.reused.reuse_prefix(ids);
        assert_eq!(self.reused.cached(), &ids[..kept], "{} {what}: the cache holds the kept prefix", self.label);
        let got = block_on(self.reused.all_logits(&ids[kept..])).unwrap();
        assert_eq!(self.reused.cached(), ids, "{} {what}: the cache holds the conversation", self.label);
        self.fresh.reset();
        let want = block_on(self.fresh.all_logits(ids)).unwrap();
        for (i, row) in got.chunks_exact(nv).enumerate() {
            let rel = rel_err(row, &want[(kept + i) * nv..(kept + i + 1) * nv]);
            assert!(rel <= TOLERANCE, "{} {what}: position {} differs by {rel:.2e}", self.label, kept + i);
            self.worst = self.worst.max(rel);
        }
        kept
    }

    /// Greedy generation of at most `max` tokens from `prompt` on the model with reuse, stopped
    /// by the caller after `stop_after` tokens when given.
    fn generate(&mut self, prompt: &[u32], max: usize, stop_after: Option<usize>) -> Generation {
        let params = GenerateParams { max_tokens: max, ignore_eog: true, ..GenerateParams::default() };
        let mut on_token = |t: &hearth::infer::TokenEvent<'_>| stop_after.is_none_or(|n| t.index + 1 < n);
        block_on(generate(&mut self.reused, self.tok, prompt, &params, &|| 0.0, &mut on_token)).unwrap()
    }
}

/// The whole conversation on `label`'s engine (`make` builds a compute for each model).
fn converse<C: Compute>(make: &dyn Fn() -> C, name: &str, label: &str) -> Option<f64> {
    let file = fixture(name)?;
    let header = GgufHeader::parse_complete(&file).unwrap();
    let tok = Tokenizer::from_gguf(&header).unwrap();
    let (reused, fresh) = (load(make(), &file), load(make(), &file));
    let nv = reused.config().n_vocab;
    let eos = tok.eos().expect("the fixtures' tokenizer has an EOS");
    let mut c = Conversation { reused, fresh, tok: &tok, label: format!("{name} {label}"), worst: 0.0 };

    // Turn 1, cancelled after three tokens: the last one was never fed back.
    let p1 = words(&tok, nv, 1, 21);
    let g1 = c.generate(&p1, 8, Some(3));
    assert_eq!((g1.stop_reason, g1.cached_tokens, g1.generated_ids.len()), (StopReason::Cancelled, 0, 3));
    assert_eq!(c.reused.cached(), [&p1[..], &g1.generated_ids[..2]].concat(), "{}: after cancellation", c.label);

    // Turn 2 continues after the answer and an EOS, with 37 new tokens.
    let conv2 = [&p1[..], &g1.generated_ids, &[eos], &words(&tok, nv, 2, 37)].concat();
    assert_eq!(c.teacher(&conv2, "after EOS"), p1.len() + 2);

    // A generation whose prompt extends the cache prefills only the new tokens; the cache then
    // holds its prompt and every generated token but the last, and the next turn builds on it.
    let p3 = [&conv2[..], &words(&tok, nv, 3, 5)].concat();
    let g3 = c.generate(&p3, 6, None);
    assert_eq!((g3.stop_reason, g3.cached_tokens, g3.timings.prefill_tokens), (StopReason::MaxTokens, conv2.len(), 5));
    assert_eq!(c.reused.cached(), [&p3[..], &g3.generated_ids[..5]].concat(), "{}: after a generation", c.label);
    let conv4 = [&p3[..], &g3.generated_ids, &[eos], &words(&tok, nv, 4, 11)].concat();
    assert_eq!(c.teacher(&conv4, "after a generation"), p3.len() + 5);

    // An edit in the middle of the history: everything from it on is evaluated again.
    let mut conv5 = conv4.clone();
    conv5[30] = words(&tok, nv, 5, 1)[0];
    assert_ne!(conv5[30], conv4[30]);
    assert_eq!(c.teacher(&conv5, "edit in the middle"), 30);

    // A strict prefix of the cache (a regenerated answer): only its last token is evaluated.
    let conv6 = conv5[..conv5.len() - 9].to_vec();
    assert_eq!(c.teacher(&conv6, "strict prefix"), conv6.len() - 1);
    // The same prompt again.
    assert_eq!(c.teacher(&conv6, "same prompt"), conv6.len() - 1);

    // Without reuse, nothing is kept.
    let params = GenerateParams { max_tokens: 2, reuse_cache: false, ..GenerateParams::default() };
    let g = block_on(generate(&mut c.reused, &tok, &conv6, &params, &|| 0.0, &mut |_| true)).unwrap();
    assert_eq!((g.cached_tokens, g.timings.prefill_tokens), (0, conv6.len()));
    eprintln!("{}: worst max|reused - fresh| / max|fresh| = {:.2e}", c.label, c.worst);
    Some(c.worst)
}

#[test]
fn a_conversation_reusing_its_cache_matches_a_fresh_model_on_the_cpu() {
    for name in FIXTURES {
        for (label, make) in [("cpu exact", Cpu::exact as fn() -> Cpu), ("cpu quantized", Cpu::new)] {
            if converse(&make, name, label).is_none() {
                return;
            }
        }
    }
}

#[test]
fn a_failed_step_leaves_an_empty_cache_and_the_next_generation_prefills_everything() {
    let Some(file) = fixture(FIXTURES[0]) else { return };
    let header = GgufHeader::parse_complete(&file).unwrap();
    let tok = Tokenizer::from_gguf(&header).unwrap();
    let mut model = load(Cpu::exact(), &file);
    let nv = model.config().n_vocab;
    let prompt = words(&tok, nv, 1, 10);
    let params = GenerateParams { max_tokens: 3, ignore_eog: true, ..GenerateParams::default() };
    block_on(generate(&mut model, &tok, &prompt, &params, &|| 0.0, &mut |_| true)).unwrap();
    assert_eq!(model.cached().len(), prompt.len() + 2);
    // A token outside the vocabulary fails the step after the shared prefix.
    let bad = [&prompt[..], &[nv + 5]].concat();
    assert!(block_on(generate(&mut model, &tok, &bad, &params, &|| 0.0, &mut |_| true)).is_err());
    assert!(model.cached().is_empty());
    let g = block_on(generate(&mut model, &tok, &prompt, &params, &|| 0.0, &mut |_| true)).unwrap();
    assert_eq!((g.cached_tokens, g.timings.prefill_tokens), (0, prompt.len()));
    // A prompt plus maxTokens over the context is refused before the cache is touched.
    let long = GenerateParams { max_tokens: SHAPE.context, ..params };
    assert!(block_on(generate(&mut model, &tok, &prompt, &long, &|| 0.0, &mut |_| true)).is_err());
    assert_eq!(model.cached().len(), prompt.len() + 2);
}

// One test function: burn allows one wgpu device init per process.
#[test]
fn a_conversation_reusing_its_cache_matches_a_fresh_model_on_every_gpu_kernel_family() {
    let Some(device) = common::device(Some(TASKS_PER_SUBMISSION)) else { return };
    for name in FIXTURES {
        for kernels in [Kernels::Rows, Kernels::Portable] {
            let make = || {
                let gpu = Gpu::new(device.clone()).unwrap();
                gpu.set_kernels(kernels).unwrap();
                gpu
            };
            if converse(&make, name, &format!("gpu {kernels:?}")).is_none() {
                return;
            }
        }
    }
}
