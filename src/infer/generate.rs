//! Generation: prefill the prompt in batched steps, then decode one token per step until an
//! end-of-generation token, a stop string, the token limit, or the caller says stop.
//!
//! Greedy decoding reads back one token id per step (the argmax runs on the device). Sampling
//! with a temperature and `0 < top_k <= MAX_TOP_K` (64) reads back only the `top_k` candidates:
//! the device applies the repetition penalty and the top-k ([`Model::next_candidates`]) and
//! [`Sampler::sample_candidates`] runs the rest of the chain on the CPU, picking exactly the
//! token the full row would give. Greedy decoding with a repetition penalty takes the same path
//! with one candidate. Sampling with top-k off (0) or above 64 reads back the whole last row of
//! logits (`n_vocab` floats) and samples it with [`Sampler::sample`].

use serde::Serialize;

use crate::tokenizer::{StreamDecoder, Tokenizer};

use super::compute::MAX_TOP_K;
use super::sampler::{Sampler, SamplerParams, StopMatcher};
use super::transformer::Model;
use super::{Compute, InferError};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateParams {
    /// Most tokens to generate.
    pub max_tokens: usize,
    pub sampler: SamplerParams,
    /// Strings that end generation; they are not part of the returned text.
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens (benchmarks).
    pub ignore_eog: bool,
    /// Keep the part of the KV cache the prompt begins with and prefill only the rest (`false`:
    /// prefill the whole prompt, as benchmarks of the prefill want).
    pub reuse_cache: bool,
}

impl Default for GenerateParams {
    fn default() -> Self {
        GenerateParams {
            max_tokens: 256,
            sampler: SamplerParams::greedy(),
            stop: Vec::new(),
            ignore_eog: false,
            reuse_cache: true,
        }
    }
}

/// Why generation ended: the status stream's vocabulary (`'eos' | 'stop' | 'length' |
/// 'cancelled'`), so the `done` event and the result say the same.
pub use crate::status::StopReason;

/// One generated token as it is streamed; to JS (`onToken`, a task's iterator) it is
/// `{ text, tokenId, index }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenEvent<'a> {
    /// The text this token completes (may be empty: part of a UTF-8 character, or held back
    /// because it may begin a stop string).
    pub text: &'a str,
    /// `None` for the final flush of held-back text (an incomplete character or a partial stop
    /// string that never completed).
    #[serde(rename = "tokenId")]
    pub id: Option<u32>,
    /// 0 for the first generated token.
    pub index: usize,
}

/// Timings in milliseconds, from the clock the caller passes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    /// From the start to the first generated token (prefill + one sampling).
    pub ttft_ms: f64,
    pub prefill_ms: f64,
    pub decode_ms: f64,
    /// Prompt tokens the prefill evaluated (those the cache did not already hold).
    pub prefill_tokens: usize,
    /// Tokens produced by decode steps (all generated tokens but the first).
    pub decode_tokens: usize,
}

impl Timings {
    pub fn prefill_tok_s(&self) -> f64 {
        rate(self.prefill_tokens, self.prefill_ms)
    }
    pub fn decode_tok_s(&self) -> f64 {
        rate(self.decode_tokens, self.decode_ms)
    }
}

fn rate(n: usize, ms: f64) -> f64 {
    if ms > 0.0 { n as f64 * 1000.0 / ms } else { 0.0 }
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    pub text: String,
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    /// Prompt tokens whose keys and values were already in the cache (not evaluated again).
    pub cached_tokens: usize,
    pub stop_reason: StopReason,
    pub timings: Timings,
}

/// Generates from `prompt_ids`. `on_token` sees every token as it is produced and returns
/// `false` to stop (cancellation between tokens). `now_ms` is the clock.
///
/// The KV cache carries over from the previous generation: its longest prefix shared with
/// `prompt_ids` is kept ([`Model::reuse_prefix`]; at least the last prompt token is evaluated,
/// for the logits) and only the rest is prefilled, unless `params.reuse_cache` is off. Afterwards
/// the cache holds the prompt and every generated token but the last (never fed back), and
/// [`Model::cached`] says so, whichever way the generation ended; a failed forward step leaves
/// it empty. The sampler sees the whole prompt as history either way.
///
/// # Errors
/// [`InferError::ContextOverflow`] before any work when the prompt plus `max_tokens` does not fit
/// the model's context; invalid sampler settings; device errors.
pub async fn generate<C: Compute>(
    model: &mut Model<C>,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    params: &GenerateParams,
    now_ms: &dyn Fn() -> f64,
    on_token: &mut dyn FnMut(&TokenEvent<'_>) -> bool,
) -> Result<Generation, InferError> {
    params.sampler.validate()?;
    if prompt_ids.is_empty() {
        return Err(InferError::invalid("prompt", "the prompt has no tokens"));
    }
    let context = model.shape().context;
    let needed = prompt_ids.len() + params.max_tokens;
    if needed > context {
        return Err(InferError::ContextOverflow { needed, context });
    }
    let cached = if params.reuse_cache { model.reuse_prefix(prompt_ids) } else { 0 };
    model.truncate(cached);
    let result = run(model, tokenizer, prompt_ids, cached, params, now_ms, on_token).await;
    if result.is_err() {
        // A step that failed on the device may have left any position half-written.
        model.reset();
    }
    result
}

/// [`generate`]'s loop, with the cache holding `prompt_ids[..cached]`.
async fn run<C: Compute>(
    model: &mut Model<C>,
    tokenizer: &Tokenizer,
    prompt_ids: &[u32],
    cached: usize,
    params: &GenerateParams,
    now_ms: &dyn Fn() -> f64,
    on_token: &mut dyn FnMut(&TokenEvent<'_>) -> bool,
) -> Result<Generation, InferError> {
    let sp = &params.sampler;
    let penalized = sp.repetition_penalty != 1.0 && sp.repeat_last_n > 0;
    let greedy = sp.is_greedy() && !penalized;
    // Candidates read back per step, or 0 for the whole row.
    let k = if sp.is_greedy() { 1 } else { sp.top_k as usize };
    let k = if k <= MAX_TOP_K.min(model.config().n_vocab as usize) { k } else { 0 };
    let mut sampler = Sampler::new(params.sampler.clone());
    let mut stops = StopMatcher::new(params.stop.clone());
    let mut decoder = StreamDecoder::new();
    let mut history: Vec<u32> = prompt_ids.to_vec();
    let mut generated = Vec::new();
    let mut text = String::new();
    let mut timings = Timings { prefill_tokens: prompt_ids.len() - cached, ..Timings::default() };
    let start = now_ms();
    let mut decode_start = start;
    let mut input: Vec<u32> = prompt_ids[cached..].to_vec();
    let mut reason = StopReason::MaxTokens;
    for index in 0..params.max_tokens {
        let id = if greedy {
            model.next_greedy(&input).await?
        } else if k > 0 {
            let window = history.len().saturating_sub(sp.repeat_last_n as usize);
            let penalty = penalized.then(|| (&history[window..], sp.repetition_penalty));
            let cands = model.next_candidates(&input, penalty, k).await?;
            sampler.sample_candidates(&cands)
        } else {
            let logits = model.next_logits(&input).await?;
            sampler.sample(&logits, &history)
        };
        if index == 0 {
            let t = now_ms();
            timings.ttft_ms = t - start;
            timings.prefill_ms = t - start;
            decode_start = t;
        }
        generated.push(id);
        history.push(id);
        input.clear();
        input.push(id);
        if !params.ignore_eog && tokenizer.is_eog(id) {
            let _ = on_token(&TokenEvent { index, id: Some(id), text: "" });
            reason = StopReason::EndOfSequence;
            break;
        }
        let piece = decoder.push(tokenizer, id);
        let out = stops.push(&piece);
        text.push_str(&out.emit);
        let go_on = on_token(&TokenEvent { index, id: Some(id), text: &out.emit });
        if out.stop.is_some() {
            reason = StopReason::StopString;
            break;
        }
        if !go_on {
            reason = StopReason::Cancelled;
            break;
        }
    }
    timings.decode_tokens = generated.len().saturating_sub(1);
    timings.decode_ms = now_ms() - decode_start;
    if reason != StopReason::StopString {
        let tail = decoder.finish();
        let mut rest = stops.push(&tail).emit;
        rest.push_str(&stops.finish());
        if !rest.is_empty() {
            text.push_str(&rest);
            let _ = on_token(&TokenEvent { index: generated.len(), id: None, text: &rest });
        }
    }
    Ok(Generation {
        text,
        prompt_ids: prompt_ids.to_vec(),
        generated_ids: generated,
        cached_tokens: cached,
        stop_reason: reason,
        timings,
    })
}
