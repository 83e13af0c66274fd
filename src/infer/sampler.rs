//! Token sampling (llama.cpp's default chain: penalties -> top-k -> top-p -> min-p ->
//! temperature -> dist) and stop-string matching on streamed text.
//!
//! Determinism: the random generator ([`crate::rng::Rng`], xoshiro256** seeded by splitmix64)
//! and the exponential ([`exp_det`], built from IEEE-exact `+ - * /` only) are integer or exact
//! arithmetic, so the same seed, settings and logits pick the same token on every platform
//! (wasm32 and x86_64 alike). Sums are in f64 and in a canonical order (vocabulary order, or
//! descending logit with ties by lower id).

use std::cmp::Ordering;

use serde::{Deserialize, Deserializer};

use super::InferError;
use crate::rng::Rng;

/// Seed used when [`SamplerParams::seed`] is `None`: fixed, so such runs repeat exactly. Callers
/// wanting varied output (the web layer) pass a random seed.
pub const DEFAULT_SEED: u64 = 0x5EED_5EED_5EED_5EED;

/// Sampling settings. `Default` is llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05,
/// no repetition penalty, window 64); `temperature == 0` or `top_k == 1` means greedy (argmax).
///
/// Deserialized (serde, camelCase: `temperature`, `topK`, `topP`, `minP`, `repetitionPenalty`,
/// `repeatLastN`, `seed`) it is the generation options of the JS API: a missing field takes
/// [`SamplerParams::greedy`]'s value, so settings without a temperature decode greedily; `seed`
/// is any number (truncated to an integer, as JS numbers are). Unknown fields are ignored, so the
/// same object can carry other options.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", default = "SamplerParams::greedy")]
pub struct SamplerParams {
    /// 0 = greedy; otherwise logits are divided by it before the final draw.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 = disabled.
    pub top_k: u32,
    /// Nucleus: keep the smallest most-likely prefix whose probability mass is >= `top_p`; 1 = off.
    pub top_p: f32,
    /// Keep tokens with p >= `min_p` * p_max; 0 = off.
    pub min_p: f32,
    /// llama.cpp `repeat_penalty`: seen tokens get logit/penalty if positive, logit*penalty if not.
    pub repetition_penalty: f32,
    /// How many of the last history tokens the penalty looks at; 0 = off, `u32::MAX` = all.
    pub repeat_last_n: u32,
    /// `None` = [`DEFAULT_SEED`].
    #[serde(deserialize_with = "seed_from_number")]
    pub seed: Option<u64>,
}

/// A seed from any number: integers as they are, other numbers truncated and saturated into
/// `u64` (`-1` is 0, `1.5` is 1), `null` none.
fn seed_from_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct Seed;
    impl<'de> serde::de::Visitor<'de> for Seed {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a number")
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.max(0) as u64))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v as u64))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<S: Deserializer<'de>>(self, d: S) -> Result<Self::Value, S::Error> {
            d.deserialize_any(Seed)
        }
    }
    d.deserialize_option(Seed)
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repetition_penalty: 1.0,
            repeat_last_n: 64,
            seed: None,
        }
    }
}

impl SamplerParams {
    /// Settings that always take the argmax.
    pub fn greedy() -> Self {
        SamplerParams { temperature: 0.0, ..Self::default() }
    }

    /// True when sampling reduces to argmax (after the repetition penalty).
    pub fn is_greedy(&self) -> bool {
        self.temperature.is_nan() || self.temperature <= 0.0 || self.top_k == 1
    }

    /// Checks every field's range: [`InferError::InvalidInput`] whose message names the field,
    /// the allowed range and the value.
    pub fn validate(&self) -> Result<(), InferError> {
        let bad = |name: &'static str, range: &str, v: f32| {
            Err(InferError::invalid(name, format!("{name} must be {range} (got {v})")))
        };
        let (t, p, m, r) = (self.temperature, self.top_p, self.min_p, self.repetition_penalty);
        if !(t.is_finite() && t >= 0.0) {
            return bad("temperature", "a finite number >= 0", t);
        }
        if !(p > 0.0 && p <= 1.0) {
            return bad("topP", "in (0, 1]", p);
        }
        if !(0.0..=1.0).contains(&m) {
            return bad("minP", "in [0, 1]", m);
        }
        if !(r.is_finite() && r > 0.0) {
            return bad("repetitionPenalty", "a finite number > 0", r);
        }
        Ok(())
    }
}

/// Index of the largest value (lowest index on ties); NaN never wins. 0 for an empty or all-NaN slice.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map_or(0, |(i, _)| i as u32)
}

/// `e^x` from IEEE-exact operations only, so it is bit-identical on every platform
/// (relative error ~1e-16). Used for every probability in the decision path.
pub fn exp_det(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000); // ln 2, high bits: k * LN2_HI exact
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76); // ln 2 - LN2_HI
    const SHIFT: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    if x.is_nan() {
        return x;
    }
    if x < -745.2 {
        return 0.0;
    }
    if x > 709.78 {
        return f64::INFINITY;
    }
    // Round to nearest by the 1.5 * 2^52 trick: exact IEEE adds, no libm `floor` call.
    let k = (x * std::f64::consts::LOG2_E + SHIFT) - SHIFT;
    let r = (x - k * LN2_HI) - k * LN2_LO; // |r| <= ~0.347
    let mut p = 1.0; // Horner form of the degree-13 Taylor series (error < 5e-18 on |r|)
    for i in (1..=13).rev() {
        p = 1.0 + p * r * (1.0 / i as f64); // 1/i folds to a constant
    }
    let k = k as i64;
    let (k1, k2) = (k / 2, k - k / 2); // two steps keep each power of two a normal number
    let pow2 = |e: i64| f64::from_bits(((e + 1023) as u64) << 52);
    p * pow2(k1) * pow2(k2)
}

#[derive(Debug, Clone, Copy)]
struct Cand {
    id: u32,
    logit: f32,
    w: f64, // unnormalised probability
}

/// Descending logit, ties (`-0.0 == +0.0` included, as in [`argmax`] and the device's top-k)
/// by lower id: a total order, so filtered sets and orders are unique.
fn by_desc(a: &Cand, b: &Cand) -> Ordering {
    // `+ 0.0` turns -0.0 into +0.0 and leaves every other value as it is.
    (b.logit + 0.0).total_cmp(&(a.logit + 0.0)).then(a.id.cmp(&b.id))
}

/// Stateful sampler: owns the RNG stream and scratch buffers reused across calls.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplerParams,
    rng: Rng,
    work: Vec<f32>,
    cand: Vec<Cand>,
    seen: Vec<u32>,
}

impl Sampler {
    /// Out-of-range settings are not rejected here (call [`SamplerParams::validate`] first); they
    /// degrade safely: NaN temperature = greedy, top-p outside (0, 1) and min-p <= 0 = off.
    pub fn new(params: SamplerParams) -> Sampler {
        let rng = Rng::new(params.seed.unwrap_or(DEFAULT_SEED));
        Sampler { params, rng, work: Vec::new(), cand: Vec::new(), seen: Vec::new() }
    }

    pub fn params(&self) -> &SamplerParams {
        &self.params
    }

    /// Picks the next token from `logits` (one per vocabulary entry). `history` is every id seen so
    /// far (prompt + generated), used by the repetition penalty; ids outside the vocabulary are
    /// ignored. NaN logits are never picked unless all are NaN (then 0). The input is not modified.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        self.work.clear();
        self.work.extend(logits.iter().map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l }));
        self.apply_penalties(history);
        if self.params.is_greedy() {
            return argmax(&self.work);
        }
        let max = self.work.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return argmax(&self.work); // +inf dominates; all -inf leaves no distribution
        }
        self.cand.clear();
        let live = self.work.iter().enumerate().filter(|(_, l)| **l > f32::NEG_INFINITY);
        self.cand.extend(live.map(|(i, &logit)| Cand { id: i as u32, logit, w: 0.0 }));
        let sorted = self.top_k();
        self.draw(max as f64, sorted)
    }

    /// Picks the next token from candidates the device already penalized and cut to the top
    /// (see [`crate::infer::Model::next_candidates`]): (id, logit) pairs, in any order. The rest
    /// of the chain (top-k again, top-p, min-p, temperature, draw) runs exactly as in
    /// [`Sampler::sample`], with the same random draws: when the candidates are the `k >= top_k`
    /// best of the penalized row (ties by lower id, as [`crate::infer::Compute::top_k`] gives
    /// them), the token is the one `sample(row, history)` picks, and the two calls can be mixed
    /// in one stream. With `top_k == 0` (no top-k) the candidates stand in for the whole row, so
    /// the result matches only if they hold every finite logit. NaN logits count as `-inf`, which
    /// is never drawn. An empty list gives 0.
    pub fn sample_candidates(&mut self, cands: &[(u32, f32)]) -> u32 {
        self.cand.clear();
        self.cand.extend(cands.iter().map(|&(id, logit)| Cand {
            id,
            logit: if logit.is_nan() { f32::NEG_INFINITY } else { logit },
            w: 0.0,
        }));
        // The best candidate is the row's maximum: what `argmax` and the max of `sample` give.
        let Some(best) = self.cand.iter().copied().min_by(by_desc) else {
            return 0;
        };
        if self.params.is_greedy() || !best.logit.is_finite() {
            return best.id;
        }
        self.cand.retain(|c| c.logit > f32::NEG_INFINITY);
        let sorted = self.top_k();
        self.draw(best.logit as f64, sorted)
    }

    /// Cuts the candidates to the `top_k` best, sorted best first (also when there are no more
    /// than `top_k`, so that a row and its top-k candidates leave the same list); returns whether
    /// they are sorted (false with top-k off: vocabulary order).
    fn top_k(&mut self) -> bool {
        let k = self.params.top_k as usize;
        if k == 0 {
            return false;
        }
        if k < self.cand.len() {
            self.cand.select_nth_unstable_by(k - 1, by_desc);
            self.cand.truncate(k);
        }
        self.cand.sort_unstable_by(by_desc);
        true
    }

    /// The chain after top-k over the live candidates (`max` is the largest logit of the row):
    /// min-p, top-p, temperature, and the draw.
    fn draw(&mut self, max: f64, sorted: bool) -> u32 {
        let p = self.params.clone(); // plain Copy fields: no allocation
        // top-p and min-p see the temperature-1 distribution, as in llama.cpp.
        let use_top_p = p.top_p > 0.0 && p.top_p < 1.0;
        let filter = use_top_p || p.min_p > 0.0;
        let t = p.temperature as f64;
        let mut total = 0.0;
        if filter {
            for c in &mut self.cand {
                c.w = exp_det(c.logit as f64 - max);
                total += c.w;
            }
            // min-p before top-p gives the same set (both keep a most-likely prefix; min-p is
            // relative to p_max, top-p uses the full mass) and shrinks what top-p has to sort.
            if p.min_p > 0.0 {
                let thr = (p.min_p as f64).min(1.0);
                self.cand.retain(|c| c.w >= thr);
            }
            if use_top_p {
                self.top_p(p.top_p as f64 * total, sorted);
            }
        }
        if !filter || t != 1.0 {
            total = 0.0;
            for c in &mut self.cand {
                c.w = exp_det((c.logit as f64 - max) / t);
                total += c.w;
            }
        } else {
            total = self.cand.iter().map(|c| c.w).sum();
        }
        let r = self.rng.next_f64() * total;
        let mut cum = 0.0;
        for c in &self.cand {
            cum += c.w;
            if r < cum {
                return c.id;
            }
        }
        // Rounding (or every weight underflowing): the most likely survivor.
        self.cand.iter().min_by(|a, b| by_desc(a, b)).map_or(0, |c| c.id)
    }

    fn apply_penalties(&mut self, history: &[u32]) {
        let pen = self.params.repetition_penalty;
        let n = self.params.repeat_last_n as usize;
        if pen == 1.0 || pen.is_nan() || pen <= 0.0 || n == 0 {
            return;
        }
        self.seen.clear();
        self.seen.extend_from_slice(&history[history.len().saturating_sub(n)..]);
        self.seen.sort_unstable();
        self.seen.dedup();
        for &t in &self.seen {
            if let Some(l) = self.work.get_mut(t as usize) {
                *l = if *l > 0.0 { *l / pen } else { *l * pen };
            }
        }
    }

    /// Keeps the smallest most-likely prefix whose weight reaches `target` (at least one token).
    /// Unsorted candidates are sorted only as far as needed: top 64, then 256, ...
    fn top_p(&mut self, target: f64, sorted: bool) {
        let n = self.cand.len();
        let mut m = if sorted { n } else { n.min(64) };
        loop {
            if !sorted {
                if m < n {
                    self.cand.select_nth_unstable_by(m - 1, by_desc);
                    self.cand[..m].sort_unstable_by(by_desc);
                } else {
                    self.cand.sort_unstable_by(by_desc);
                }
            }
            let mut cum = 0.0;
            if let Some(i) = self.cand[..m].iter().position(|c| {
                cum += c.w;
                cum >= target
            }) {
                self.cand.truncate(i + 1);
                return;
            }
            if m == n {
                return;
            }
            m = (m * 4).min(n);
        }
    }
}

/// Result of [`StopMatcher::push`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StopOutcome {
    /// Text safe to show now. When `stop` is set, this is the (rest of the) text before the stop.
    pub emit: String,
    /// Index (into the list given to [`StopMatcher::new`]) of the stop string that completed.
    pub stop: Option<usize>,
}

/// Finds stop strings in streamed text, holding back only the longest tail that could still
/// begin a stop string. The earliest-starting stop wins (as llama.cpp's server picks it).
#[derive(Debug, Clone)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    done: bool,
}

impl StopMatcher {
    /// Empty stop strings are ignored (for matching; indices still refer to `stops` as given).
    pub fn new(stops: Vec<String>) -> StopMatcher {
        StopMatcher { stops, held: String::new(), done: false }
    }

    /// True once a stop string has completed; later pushes emit nothing.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn push(&mut self, piece: &str) -> StopOutcome {
        if self.done {
            return StopOutcome::default();
        }
        self.held.push_str(piece);
        let live = || self.stops.iter().enumerate().filter(|(_, s)| !s.is_empty());
        // Earliest start; on a tie the shorter stop (it completes first).
        let hit = live().filter_map(|(i, s)| self.held.find(s.as_str()).map(|pos| (pos, s.len(), i))).min();
        if let Some((pos, _, i)) = hit {
            self.held.truncate(pos);
            self.done = true;
            return StopOutcome { emit: std::mem::take(&mut self.held), stop: Some(i) };
        }
        let longest = live().map(|(_, s)| s.len()).max().unwrap_or(0);
        let from = self.held.len().saturating_sub(longest.saturating_sub(1));
        let split = self
            .held
            .char_indices()
            .map(|(j, _)| j)
            .filter(|&j| j >= from)
            .find(|&j| live().any(|(_, s)| s.starts_with(&self.held[j..])))
            .unwrap_or(self.held.len());
        let rest = self.held.split_off(split);
        StopOutcome { emit: std::mem::replace(&mut self.held, rest), stop: None }
    }

    /// Flushes the held-back text at the end of generation (empty after a stop).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests;
