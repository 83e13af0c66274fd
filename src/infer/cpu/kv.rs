//! The half-precision KV cache ([`crate::infer::KvCache::F16`]): keys and values stored as IEEE
//! f16 bits, two per 4-byte word of the cache buffer, converted on the way in (round to nearest
//! even, as llama.cpp's `GGML_FP32_TO_FP16`) and on the way out, one row at a time into scratch.
//! wasm has no f16 arithmetic and no conversion instruction: both directions are integer bit
//! operations that the compiler turns into simd128 (or SSE/AVX) over a row.

use super::dot;
use crate::infer::compute::Attention;

/// The `u16` halves of a cache buffer's words: element `e` of the cache is `halves[e]`.
pub fn halves(words: &[f32]) -> &[u16] {
    // SAFETY: u16 needs less alignment than f32, every bit pattern is valid for both, and the
    // byte length is the same.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u16>(), words.len() * 2) }
}

/// [`halves`], writable.
pub fn halves_mut(words: &mut [f32]) -> &mut [u16] {
    // SAFETY: as in `halves`; the borrow is exclusive.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u16>(), words.len() * 2) }
}

/// `x` as f16 bits, rounded to nearest even; overflow gives infinity, NaN a quiet NaN (F. Giesen's
/// `float_to_half_fast3_rtne`, branch-light and exact).
#[inline(always)]
pub fn f32_to_f16(x: f32) -> u16 {
    const F16_MAX: u32 = (127 + 16) << 23; // 65536: at or above, infinity
    const DENORM_MAGIC: u32 = ((127 - 15) + (23 - 10) + 1) << 23;
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    let h = if abs >= F16_MAX {
        if abs > 0x7f80_0000 { 0x7e00 } else { 0x7c00 }
    } else if abs < (113 << 23) {
        // Below f16's smallest normal: adding 0.5 * 2^-14 * 2^10-ish magic lets the FPU round
        // the mantissa into the low bits.
        let f = f32::from_bits(abs) + f32::from_bits(DENORM_MAGIC);
        (f.to_bits() - DENORM_MAGIC) as u16
    } else {
        let odd = (abs >> 13) & 1;
        let r = abs.wrapping_add(((15u32.wrapping_sub(127)) << 23).wrapping_add(0xfff)).wrapping_add(odd);
        (r >> 13) as u16
    };
    h | sign
}

/// f16 bits to f32, exactly as [`crate::gguf::f16_to_f32`] but without branches on the value:
/// the exponent and mantissa shifted into an f32 and scaled by 2^112 (exact, subnormals included),
/// infinities and NaNs set apart, then the sign.
#[inline(always)]
pub fn f16_to_f32(h: u16) -> f32 {
    let h = u32::from(h);
    let mag = h & 0x7fff;
    let bits = mag << 13;
    let finite = (f32::from_bits(bits) * f32::from_bits(0x7780_0000)).to_bits(); // 2^112
    let v = if mag >= 0x7c00 { bits | 0x7f80_0000 } else { finite };
    f32::from_bits(v | ((h & 0x8000) << 16))
}

/// Rows `src[i * width..]` for `i < n` stored as f16 at row `pos0` of the cache `words`.
pub fn store(src: &[f32], n: usize, width: usize, pos0: usize, words: &mut [f32]) {
    let dst = &mut halves_mut(words)[pos0 * width..(pos0 + n) * width];
    for (h, &x) in dst.iter_mut().zip(&src[..n * width]) {
        *h = f32_to_f16(x);
    }
}

/// Scratch of [`attention`]: one K or V row of a KV head in f32, the scores of a KV head's query
/// heads, their softmax sums. Grown once to the largest context and head group.
#[derive(Debug, Default)]
pub struct Scratch {
    row: Vec<f32>,
    scores: Vec<f32>,
    sums: Vec<f32>,
}

/// Where [`attention`] reads a cached key or value row: an f32 cache as it is, an f16 cache
/// ([`halves`]) converted into the scratch row.
pub trait CacheRows {
    /// The `len` elements at `at`, through `buf` (`len` long) when they need converting.
    fn row<'a>(&'a self, at: usize, len: usize, buf: &'a mut [f32]) -> &'a [f32];
}

impl CacheRows for [f32] {
    fn row<'a>(&'a self, at: usize, len: usize, _: &'a mut [f32]) -> &'a [f32] {
        &self[at..at + len]
    }
}

impl CacheRows for [u16] {
    fn row<'a>(&'a self, at: usize, len: usize, buf: &'a mut [f32]) -> &'a [f32] {
        for (r, &h) in buf.iter_mut().zip(&self[at..at + len]) {
            *r = f16_to_f32(h);
        }
        buf
    }
}

/// [`crate::infer::Compute::attention`] over f32 or f16 caches, per KV head: each cached key
/// and value row is read (converted, for f16) once for all the query heads that share it. Per
/// query head the arithmetic and its order are the one-head-at-a-time computation's: scores
/// `q . k * scale`, softmax from the row's maximum, values summed in position order.
#[allow(clippy::too_many_arguments)]
pub fn attention<C: CacheRows + ?Sized>(
    q: &[f32],
    k: &C,
    v: &C,
    n: usize,
    a: Attention,
    out: &mut [f32],
    s: &mut Scratch,
) {
    let hd = a.head_dim as usize;
    let (qw, kvw) = (a.n_head as usize * hd, a.n_head_kv as usize * hd);
    let group = (a.n_head / a.n_head_kv) as usize;
    s.row.resize(hd, 0.0);
    s.sums.resize(group, 0.0);
    for i in 0..n {
        let p = a.pos0 as usize + i;
        let t0 = if a.window > 0 { (p + 1).saturating_sub(a.window as usize) } else { 0 };
        let len = p + 1 - t0;
        s.scores.resize(group * len, 0.0);
        for g in 0..a.n_head_kv as usize {
            let heads = g * group..(g + 1) * group;
            for t in t0..=p {
                let kr = k.row(t * kvw + g * hd, hd, &mut s.row);
                for (j, h) in heads.clone().enumerate() {
                    let qh = &q[i * qw + h * hd..i * qw + (h + 1) * hd];
                    s.scores[j * len + t - t0] = dot(qh, kr) * a.scale;
                }
            }
            for (j, sum) in s.sums.iter_mut().enumerate() {
                let scores = &mut s.scores[j * len..(j + 1) * len];
                let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                *sum = 0.0;
                for x in scores.iter_mut() {
                    *x = (*x - max).exp();
                    *sum += *x;
                }
            }
            for h in heads.clone() {
                out[i * qw + h * hd..i * qw + (h + 1) * hd].fill(0.0);
            }
            for t in t0..=p {
                let vr = v.row(t * kvw + g * hd, hd, &mut s.row);
                for (j, h) in heads.clone().enumerate() {
                    let wgt = s.scores[j * len + t - t0] / s.sums[j];
                    let o = &mut out[i * qw + h * hd..i * qw + (h + 1) * hd];
                    for (o, &r) in o.iter_mut().zip(vr) {
                        *o += wgt * r;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn f16_to_f32_equals_the_gguf_decoder_on_every_value() {
        for h in 0..=u16::MAX {
            let (fast, slow) = (f16_to_f32(h), crate::gguf::f16_to_f32(h));
            assert_eq!(fast.to_bits(), slow.to_bits(), "{h:#06x}");
        }
    }

    #[test]
    fn f32_to_f16_rounds_to_nearest_even() {
        for h in 0..=u16::MAX {
            let x = crate::gguf::f16_to_f32(h);
            if x.is_nan() {
                assert_eq!(f32_to_f16(x) & 0x7e00, 0x7e00, "{h:#06x}: a NaN stays a NaN");
                continue;
            }
            assert_eq!(f32_to_f16(x), h, "{h:#06x} round trip");
            assert_eq!(f32_to_f16(-x), h ^ 0x8000, "{h:#06x} negated");
            // Between a positive h and the next value up: below the midpoint goes down, above
            // it up, the midpoint itself to the even one (65504 to infinity is tested below).
            if h >= 0x7bff {
                continue;
            }
            let (next, y) = (h + 1, crate::gguf::f16_to_f32(h + 1));
            let mid = ((f64::from(x) + f64::from(y)) / 2.0) as f32; // exact: 12 significant bits
            assert_eq!(f32_to_f16(mid), if h & 1 == 0 { h } else { next }, "{h:#06x} midpoint");
            assert_eq!(f32_to_f16(mid.next_down()), h, "{h:#06x} below the midpoint");
            assert_eq!(f32_to_f16(mid.next_up()), next, "{h:#06x} above the midpoint");
        }
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(-1e6), 0xfc00);
        assert_eq!(f32_to_f16(65519.0), 0x7bff);
        assert_eq!(f32_to_f16(65520.0), 0x7c00);
        assert_eq!(f32_to_f16(1e-9), 0);
    }

    /// The f32 attention path on f16-rounded keys and values: what the f16 path must equal.
    #[test]
    fn attention_equals_the_f32_path_on_the_rounded_cache() {
        use crate::infer::Compute;
        use crate::infer::cpu::Cpu;
        let mut rng = Rng::new(3);
        let (n_head, n_head_kv, hd, ctx) = (6u32, 2u32, 16usize, 40usize);
        let kvw = n_head_kv as usize * hd;
        let (k, v) = (rng.signed_f32s(ctx * kvw), rng.signed_f32s(ctx * kvw));
        let rounded = |x: &[f32]| x.iter().map(|&x| f16_to_f32(f32_to_f16(x))).collect::<Vec<f32>>();
        let (mut kw, mut vw) = (vec![0f32; ctx * kvw / 2], vec![0f32; ctx * kvw / 2]);
        store(&k, ctx, kvw, 0, &mut kw);
        store(&v, ctx, kvw, 0, &mut vw);
        let cpu = Cpu::new();
        for (n, pos0, window) in [(1usize, 39u32, 0u32), (5, 10, 0), (3, 30, 8)] {
            let q = rng.signed_f32s(n * n_head as usize * hd);
            let a = Attention { n_head, n_head_kv, head_dim: hd as u32, pos0, scale: 0.25, window };
            let want = cpu.alloc(q.len()).unwrap();
            let (qb, kb, vb) = (
                cpu.upload_f32(&q).unwrap(),
                cpu.upload_f32(&rounded(&k)).unwrap(),
                cpu.upload_f32(&rounded(&v)).unwrap(),
            );
            cpu.attention(&qb, &kb, &vb, n, a, &want);
            let mut got = vec![0f32; q.len()];
            attention(&q, halves(&kw), halves(&vw), n, a, &mut got, &mut Scratch::default());
            assert_eq!(got, *want.borrow(), "n {n} pos0 {pos0} window {window}");
        }
    }
}
