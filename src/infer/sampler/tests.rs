use super::*;

fn params(temperature: f32, top_k: u32, top_p: f32, min_p: f32) -> SamplerParams {
    let seed = Some(42);
    SamplerParams { temperature, top_k, top_p, min_p, seed, ..SamplerParams::default() }
}

#[test]
fn argmax_ties_nan_empty() {
    assert_eq!(argmax(&[0.1, 3.0, -2.0, 3.0]), 1);
    assert_eq!(argmax(&[f32::NAN, 1.0, f32::NAN, 0.5]), 1);
    assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
    assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY, -1.0]), 2);
    assert_eq!(argmax(&[]), 0);
}

#[test]
fn greedy_is_argmax() {
    let logits = [0.5, 2.0, f32::NAN, 2.0, -1.0];
    for p in [SamplerParams::greedy(), params(1.0, 1, 1.0, 0.0)] {
        assert!(p.is_greedy());
        let mut s = Sampler::new(p);
        assert_eq!(s.sample(&logits, &[]), 1);
    }
    assert!(!SamplerParams::default().is_greedy());
}

#[test]
fn exp_det_matches_std() {
    for i in -7000..=7000 {
        let x = i as f64 * 0.1;
        let (a, b) = (exp_det(x), x.exp());
        assert!((a - b).abs() <= 4e-16 * b, "x={x} {a} {b}");
    }
    assert_eq!(exp_det(0.0), 1.0);
    assert_eq!(exp_det(f64::NEG_INFINITY), 0.0);
}

fn draws(seed: u64, n: usize) -> Vec<u32> {
    let logits = [0.0, 0.3, -0.2, 0.1, 0.0, 0.2, -0.1, 0.05];
    let mut s = Sampler::new(SamplerParams { seed: Some(seed), ..params(1.0, 0, 1.0, 0.0) });
    (0..n).map(|_| s.sample(&logits, &[])).collect()
}

#[test]
fn seeds_repeat_and_differ() {
    assert_eq!(draws(7, 100), draws(7, 100));
    assert_ne!(draws(7, 100), draws(8, 100));
    let none = |s: &mut Sampler| (0..50).map(|_| s.sample(&[0.0; 8], &[])).collect::<Vec<_>>();
    let p = SamplerParams { seed: None, ..params(1.0, 0, 1.0, 0.0) };
    assert_eq!(none(&mut Sampler::new(p.clone())), none(&mut Sampler::new(p)));
}

#[test]
fn temperature_frequencies_match_softmax() {
    let logits = [1.0f32, 2.0, 0.5, -1.0];
    for temp in [1.0f32, 0.5] {
        let mut s = Sampler::new(params(temp, 0, 1.0, 0.0));
        let n = 20_000;
        let mut counts = [0usize; 4];
        for _ in 0..n {
            counts[s.sample(&logits, &[]) as usize] += 1;
        }
        let w: Vec<f64> = logits.iter().map(|&l| ((l / temp) as f64).exp()).collect();
        let z: f64 = w.iter().sum();
        let chi2: f64 = (0..4)
            .map(|i| {
                let e = n as f64 * w[i] / z;
                (counts[i] as f64 - e).powi(2) / e
            })
            .sum();
        assert!(chi2 < 25.0, "temp {temp}: chi2 {chi2}, counts {counts:?}");
    }
}

#[test]
fn top_k_top_p_min_p_filter() {
    let logits = [1.0f32, 3.0, 2.9, 0.0, 2.8, -5.0];
    let kept = |p: SamplerParams| {
        let mut s = Sampler::new(p);
        let mut seen = [false; 6];
        for _ in 0..2000 {
            seen[s.sample(&logits, &[]) as usize] = true;
        }
        (0..6).filter(|&i| seen[i]).collect::<Vec<_>>()
    };
    // top_k = 2 keeps ids 1 and 2 only.
    assert_eq!(kept(params(5.0, 2, 1.0, 0.0)), [1, 2]);
    // A tiny top_p keeps only the argmax, even at a high temperature.
    assert_eq!(kept(params(5.0, 0, 1e-6, 0.0)), [1]);
    // min_p 0.5: exp(-0.1), exp(-0.2) >= 0.5 > exp(-2); the rest dropped.
    assert_eq!(kept(params(5.0, 0, 1.0, 0.5)), [1, 2, 4]);
    // top_p 0.5 on p ~ [.05,.36,.33,.02,.30,0]: ids 1 and 2 reach it.
    assert_eq!(kept(params(5.0, 0, 0.5, 0.0)), [1, 2]);
    // Both together keep the smaller set: top_p's [1, 2] within min_p 0.5's [1, 2, 4], and
    // min_p 0.95's [1] within top_p's [1, 2].
    assert_eq!(kept(params(5.0, 0, 0.5, 0.5)), [1, 2]);
    assert_eq!(kept(params(5.0, 0, 0.5, 0.95)), [1]);
    // With nothing filtered everything shows up at a high temperature.
    assert_eq!(kept(params(50.0, 0, 1.0, 0.0)), [0, 1, 2, 3, 4, 5]);
    // Large vocabulary through the incremental top-p path.
    let big: Vec<f32> = (0..100_000).map(|i| ((i * 7919) % 1000) as f32 * 0.01).collect();
    let mut s = Sampler::new(params(1.0, 0, 0.9, 0.0));
    for _ in 0..20 {
        assert!(big[s.sample(&big, &[]) as usize] >= 7.5);
    }
}

#[test]
fn repetition_penalty_direction() {
    let mut p = SamplerParams { repetition_penalty: 2.0, ..SamplerParams::greedy() };
    let mut s = Sampler::new(p.clone());
    // Positive: 4.0 / 2 = 2.0 < 3.0, so the repeated id 0 loses to id 1.
    assert_eq!(s.sample(&[4.0, 3.0], &[]), 0);
    assert_eq!(s.sample(&[4.0, 3.0], &[0, 0, 9999]), 1);
    // Negative: -1.0 * 2 = -2.0 < -1.5, so the repeated id 0 loses to id 1.
    assert_eq!(s.sample(&[-1.0, -1.5], &[0]), 1);
    // Outside the window (last 2) no penalty applies.
    p.repeat_last_n = 2;
    let mut s = Sampler::new(p);
    assert_eq!(s.sample(&[4.0, 3.0], &[0, 1, 1]), 0);
}

/// The device's candidates for a row: llama.cpp's penalty on the distinct ids of `seen`,
/// then the `k` best by [`crate::infer::compute::order_key`] (ties by lower id), as values.
fn device_candidates(logits: &[f32], seen: &[u32], pen: f32, k: usize) -> Vec<(u32, f32)> {
    use crate::infer::compute::{order_key, order_value};
    let mut row = logits.to_vec();
    let mut seen = seen.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for &t in &seen {
        let v = &mut row[t as usize];
        *v = if *v > 0.0 { *v / pen } else { *v * pen };
    }
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by_key(|&i| (std::cmp::Reverse(order_key(row[i as usize])), i));
    idx.truncate(k);
    idx.iter().map(|&i| (i, order_value(order_key(row[i as usize])))).collect()
}

#[test]
fn candidates_pick_what_the_full_row_picks() {
    let mut r = Rng::new(99);
    let mut draws = 0usize;
    for case in 0..300u64 {
        let n = 50 + r.next_u64() as usize % 400;
        // Coarse values make ties; a few NaN, infinities and signed zeros.
        let mut logits: Vec<f32> = (0..n).map(|_| ((r.next_f64() * 40.0).floor() as f32 - 20.0) * 0.25).collect();
        for _ in 0..3 {
            let i = r.next_u64() as usize % n;
            logits[i] = [f32::NAN, f32::NEG_INFINITY, -0.0, 0.0][r.next_u64() as usize % 4];
        }
        if case % 50 == 7 {
            logits[r.next_u64() as usize % n] = f32::INFINITY;
        }
        let top_k = [1u32, 2, 5, 40, 64][case as usize % 5];
        let p = SamplerParams {
            temperature: [0.8f32, 1.0, 0.3, 2.0, 0.0][(case / 5) as usize % 5],
            top_k,
            top_p: [0.95f32, 1.0, 0.5][(case / 25) as usize % 3],
            min_p: [0.05f32, 0.0, 0.2][(case / 75) as usize % 3],
            repetition_penalty: [1.0f32, 1.3, 0.8][case as usize % 3],
            repeat_last_n: [64u32, 3, u32::MAX][(case / 3) as usize % 3],
            seed: Some(case),
        };
        let (mut full, mut cands) = (Sampler::new(p.clone()), Sampler::new(p.clone()));
        let mut history: Vec<u32> = (0..8).map(|_| r.next_u64() as u32 % n as u32).collect();
        // More candidates than top_k when the device fetches a fixed number.
        let k = if case % 2 == 0 { top_k as usize } else { 64 };
        for _ in 0..20 {
            let window = &history[history.len().saturating_sub(p.repeat_last_n as usize)..];
            let c = device_candidates(&logits, window, p.repetition_penalty, k);
            let want = full.sample(&logits, &history);
            assert_eq!(cands.sample_candidates(&c), want, "case {case}: {p:?}");
            draws += 1;
            history.push(want);
            logits.rotate_left(1 + want as usize % 7);
        }
    }
    assert_eq!(draws, 6000);
}

#[test]
fn validate_messages() {
    assert!(SamplerParams::default().validate().is_ok());
    assert!(SamplerParams::greedy().validate().is_ok());
    let bad = |f: fn(&mut SamplerParams)| {
        let mut p = SamplerParams::default();
        f(&mut p);
        p.validate().unwrap_err().to_string()
    };
    assert!(bad(|p| p.temperature = -0.1).contains("temperature must be a finite number >= 0"));
    assert!(bad(|p| p.temperature = f32::NAN).contains("temperature"));
    assert!(bad(|p| p.top_p = 0.0).contains("topP must be in (0, 1]"));
    assert!(bad(|p| p.top_p = 1.5).contains("topP"));
    assert!(bad(|p| p.min_p = -0.5).contains("minP must be in [0, 1]"));
    assert!(bad(|p| p.repetition_penalty = 0.0).contains("repetitionPenalty must be"));
    let p = SamplerParams { top_p: 2.0, ..SamplerParams::default() };
    assert!(matches!(p.validate(), Err(InferError::InvalidInput { field: "topP", .. })));
}

#[test]
fn serde_camel_case_with_greedy_defaults() {
    let p: SamplerParams = serde_json::from_str(r#"{"topK": 5, "repeatLastN": 8}"#).unwrap();
    let want = SamplerParams { top_k: 5, repeat_last_n: 8, ..SamplerParams::greedy() };
    assert_eq!(p, want);
    let p: SamplerParams = serde_json::from_str(r#"{"temperature": 0.7, "maxTokens": 9, "stop": ["x"]}"#).unwrap();
    assert_eq!(p, SamplerParams { temperature: 0.7, ..SamplerParams::greedy() });
    assert_eq!(serde_json::from_str::<SamplerParams>("{}").unwrap(), SamplerParams::greedy());
    let seed = |json: &str| serde_json::from_str::<SamplerParams>(json).unwrap().seed;
    assert_eq!(seed(r#"{"seed": 42}"#), Some(42));
    assert_eq!(seed(r#"{"seed": 1.9}"#), Some(1));
    assert_eq!(seed(r#"{"seed": -3}"#), Some(0));
    assert_eq!(seed(r#"{"seed": null}"#), None);
    assert!(serde_json::from_str::<SamplerParams>(r#"{"topK": -1}"#).is_err());
    assert!(serde_json::from_str::<SamplerParams>(r#"{"seed": "x"}"#).is_err());
    let json = serde_json::to_string(&SamplerParams::greedy()).unwrap();
    assert!(json.contains("\"repetitionPenalty\":1.0") && json.contains("\"seed\":null"));
}

fn feed(stops: &[&str], pieces: &[&str]) -> (String, Option<usize>, Vec<String>) {
    let mut m = StopMatcher::new(stops.iter().map(|s| s.to_string()).collect());
    let (mut out, mut emits) = (String::new(), Vec::new());
    for p in pieces {
        let o = m.push(p);
        out.push_str(&o.emit);
        emits.push(o.emit);
        if o.stop.is_some() {
            return (out, o.stop, emits);
        }
    }
    out.push_str(&m.finish());
    (out, None, emits)
}

#[test]
fn stop_matcher() {
    // Split across pieces; the held "</" is released only as far as it is safe.
    let (out, stop, emits) = feed(&["</s>"], &["hello <", "/", "s> tail"]);
    assert_eq!((out.as_str(), stop), ("hello ", Some(0)));
    assert_eq!(emits, ["hello ", "", ""]);
    // No false hold-back: "<" followed by something else is released at once.
    let (out, stop, emits) = feed(&["</s>"], &["a<", "b", "c"]);
    assert_eq!((out.as_str(), stop, emits[1].as_str()), ("a<bc", None, "<b"));
    // Multiple stops: the earliest wins; indices refer to the given list.
    let (out, stop, _) = feed(&["", "END", "\n\n"], &["x\n\ny END"]);
    assert_eq!((out.as_str(), stop), ("x", Some(2)));
    // Stop at the very start.
    assert_eq!(feed(&["###"], &["###", "more"]).0, "");
    // Overlapping prefix: "aba" must be held for "abab".
    let (out, stop, emits) = feed(&["abab"], &["xaba", "b!"]);
    assert_eq!((out.as_str(), stop, emits[0].as_str()), ("x", Some(0), "x"));
    // finish() flushes a partial stop that never completed.
    let (out, stop, _) = feed(&["STOP"], &["go ST", "O"]);
    assert_eq!((out.as_str(), stop), ("go STO", None));
    // Multibyte: holding back lands on char boundaries.
    let (out, stop, emits) = feed(&["é终"], &["caf", "é", "!é", "终x"]);
    assert_eq!((out.as_str(), stop), ("café!", Some(0)));
    assert_eq!(emits, ["caf", "", "é!", ""]);
    let (out, _, _) = feed(&["日本"], &["x日", "日本"]);
    assert_eq!(out, "x日");
    // After a stop, nothing more comes out.
    let mut m = StopMatcher::new(vec!["z".into()]);
    assert_eq!(m.push("az").stop, Some(0));
    assert!(m.is_done() && m.push("b").emit.is_empty() && m.finish().is_empty());
}
