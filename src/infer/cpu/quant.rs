//! Quantized dot products over GGUF blocks, the way llama.cpp's CPU backend computes them.
//!
//! Weights stay in their GGUF blocks. Before a matrix product the activation rows are quantized
//! once into 8-bit blocks of 32 ([`QuantActs`]: 32 `i8`, an `f32` scale, and `scale * sum(q)`
//! for the formats with a minimum, as llama.cpp's `block_q8_1` keeps it). Each (weight block,
//! activation block) pair is then an exact integer dot product, with the scales applied once per
//! block.
//!
//! The k-quants (Q4_K, Q5_K, Q6_K) take the same 32-blocks, where llama.cpp quantizes their
//! activations per 256 (`block_q8_K`): their sub-blocks are 32 (16 for Q6_K, two per activation
//! block), so applying one activation scale per sub-block costs one multiply per 32 products.
//! It matters: a model's k-quant tensors are the ones whose width is a multiple of 256, in
//! practice `ffn_down`, whose input (the gated activation) has the heaviest outliers: on Gemma 3
//! 270M, per-32 scales cut the worst log-probability error of a top-5 token against the exact
//! f32 mode from 0.89 to 0.57 nats, and the worst greedy-choice gap from 0.17 to 0.01 nats.
//! Scales are `f32` (llama.cpp rounds activation scales to f16).
//!
//! Every format has two kernels: [`reference`], plain per-element code written from the block
//! layouts in `ggml-common.h` (the specification the tests check against), and the fast one
//! ([`Kernel::dot`]), which unpacks a weight block into `i8` lanes once for all the tokens of a
//! product and calls [`dot_i8`] per token. [`dot_i8`] is `core::arch::wasm32` simd128 on wasm32
//! built with `+simd128` (`.cargo/config.toml`), SSE2 on x86-64, and a loop the compiler
//! vectorises elsewhere; both give the same integers, and the float operations are
//! done in the same order in both kernels, so fast and reference agree bit for bit.

use crate::gguf::{GgmlType, QK_K, f16_to_f32};
use crate::rng::Rng;

/// Elements of a 32-element block.
const QK: usize = 32;

/// One quantized activation row, as the kernels read it.
#[derive(Debug, Clone, Copy)]
pub struct Q8Row<'a> {
    /// The quants, `cols` of them.
    pub qs: &'a [i8],
    /// One scale per block.
    pub d: &'a [f32],
    /// `d * sum(q)` per block.
    pub sum: &'a [f32],
}

/// `n` activation rows quantized in blocks of 32. The storage grows to the largest batch seen
/// and is reused after that, so quantizing allocates nothing per token.
#[derive(Debug, Default)]
pub struct QuantActs {
    cols: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    sum: Vec<f32>,
}

impl QuantActs {
    /// Quantizes `n` rows of `cols` (`x` is `n x cols`, `cols` a multiple of 32): per block,
    /// `d = max|x| / 127` and `q = round(x / d)`, as llama.cpp's `quantize_row_q8_0`.
    pub fn quantize(&mut self, x: &[f32], n: usize, cols: usize) {
        debug_assert!(cols.is_multiple_of(QK) && x.len() >= n * cols);
        let blocks = n * cols / QK;
        self.cols = cols;
        self.qs.resize(n * cols, 0);
        self.d.resize(blocks, 0.0);
        self.sum.resize(blocks, 0.0);
        let x = &x[..n * cols];
        for (b, (xs, qs)) in x.chunks_exact(QK).zip(self.qs.chunks_exact_mut(QK)).enumerate() {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let id = if d > 0.0 { 1.0 / d } else { 0.0 };
            for (q, &v) in qs.iter_mut().zip(xs) {
                // |v * id| <= 127 up to rounding; the clamp keeps a rounding overshoot in range.
                *q = (v * id).round().clamp(-127.0, 127.0) as i8;
            }
            self.d[b] = d;
            self.sum[b] = d * qs.iter().map(|&q| i32::from(q)).sum::<i32>() as f32;
        }
    }

    /// The quants, scales and block sums of the last [`Self::quantize`] (`n` rows): what a shard
    /// worker receives through shared memory (see [`super::team`]).
    pub fn parts(&self) -> (&[i8], &[f32], &[f32]) {
        (&self.qs, &self.d, &self.sum)
    }

    /// Room for `n` rows of `cols` to be written from [`Self::parts`] of another instance, as
    /// [`Self::quantize`] would have left them.
    pub fn parts_mut(&mut self, n: usize, cols: usize) -> (&mut [i8], &mut [f32], &mut [f32]) {
        let blocks = n * cols / QK;
        self.cols = cols;
        self.qs.resize(n * cols, 0);
        self.d.resize(blocks, 0.0);
        self.sum.resize(blocks, 0.0);
        (&mut self.qs[..n * cols], &mut self.d[..blocks], &mut self.sum[..blocks])
    }

    /// Row `i` of the last [`Self::quantize`].
    pub fn row(&self, i: usize) -> Q8Row<'_> {
        let (cols, bpr) = (self.cols, self.cols / QK);
        Q8Row {
            qs: &self.qs[i * cols..(i + 1) * cols],
            d: &self.d[i * bpr..(i + 1) * bpr],
            sum: &self.sum[i * bpr..(i + 1) * bpr],
        }
    }
}

/// A dot product of one weight row (its GGUF bytes) with one quantized activation row.
pub type DotFn = fn(&[u8], Q8Row<'_>) -> f32;

/// Dot products of one weight row with every row of a [`QuantActs`]: `out[i] += w . a[i]` for
/// `i < out.len()` (`out` starts at zero).
pub type RowFn = fn(&[u8], &QuantActs, &mut [f32]);

/// The kernels of one weight format.
#[derive(Debug, Clone, Copy)]
pub struct Kernel {
    /// The fast kernel, all tokens per pass over the row.
    pub dot: RowFn,
    /// The plain per-element kernel the fast one is tested against.
    pub reference: DotFn,
}

/// The quantized kernel for weights of type `ty`, if there is one (F32/F16 matrices use an f32
/// dot product instead; see [`super::Cpu`]). The fast kernel is the AVX2 one on x86-64 CPUs
/// with AVX2 (`x86.rs`), and on wasm32 with simd128 the nibble formats unpack in registers
/// (`wasm.rs`).
pub fn kernel(ty: GgmlType) -> Option<Kernel> {
    #[allow(unused_mut)] // replaced only where a faster kernel exists
    let mut k = baseline(ty)?;
    #[cfg(target_arch = "x86_64")]
    if x86::available() {
        k.dot = match ty {
            GgmlType::Q4_0 => x86::q4_0,
            GgmlType::Q4_1 => x86::q4_1,
            GgmlType::Q5_0 => x86::q5_0,
            GgmlType::Q5_1 => x86::q5_1,
            GgmlType::Q8_0 => x86::q8_0,
            GgmlType::Q4_K => x86::q4_k,
            GgmlType::Q5_K => x86::q5_k,
            GgmlType::Q6_K => x86::q6_k,
            _ => k.dot,
        };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        k.dot = match ty {
            GgmlType::Q4_0 => wasm::q4_0,
            GgmlType::Q4_1 => wasm::q4_1,
            GgmlType::Q5_0 => wasm::q5_0,
            GgmlType::Q5_1 => wasm::q5_1,
            GgmlType::Q4_K => wasm::q4_k,
            GgmlType::Q6_K => wasm::q6_k,
            _ => k.dot,
        };
    }
    Some(k)
}

/// The kernels every target has: [`dot_i8`] (simd128 / SSE2 / portable) after a scalar unpack.
fn baseline(ty: GgmlType) -> Option<Kernel> {
    let (dot, reference): (RowFn, DotFn) = match ty {
        GgmlType::Q4_0 => (fast::q4_0, reference::q4_0),
        GgmlType::Q4_1 => (fast::q4_1, reference::q4_1),
        GgmlType::Q5_0 => (fast::q5_0, reference::q5_0),
        GgmlType::Q5_1 => (fast::q5_1, reference::q5_1),
        GgmlType::Q8_0 => (fast::q8_0, reference::q8_0),
        GgmlType::Q4_K => (fast::q4_k, reference::q4_k),
        GgmlType::Q5_K => (fast::q5_k, reference::q5_k),
        GgmlType::Q6_K => (fast::q6_k, reference::q6_k),
        _ => return None,
    };
    Some(Kernel { dot, reference })
}

#[inline(always)]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// The 6-bit (scale, min) pair of sub-block `j` of a Q4_K/Q5_K block (`get_scale_min_k4`).
#[inline(always)]
fn scale_min_k4(j: usize, s: &[u8]) -> (i32, i32) {
    let (sc, m) = if j < 4 {
        (s[j] & 0x3f, s[j + 4] & 0x3f)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30), (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30))
    };
    (i32::from(sc), i32::from(m))
}

/// `sum a[i] * b[i]` over equal lengths that are a multiple of 16, exactly (no overflow: at
/// most 127 * 128 per term and a few thousand terms).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    use core::arch::wasm32::*;
    assert!(a.len() == b.len() && a.len().is_multiple_of(16));
    let mut acc = i32x4_splat(0);
    for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        // SAFETY: each chunk is exactly 16 bytes; `v128_load` has no alignment requirement.
        let (va, vb) = unsafe { (v128_load(ca.as_ptr().cast()), v128_load(cb.as_ptr().cast())) };
        let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(va), i16x8_extend_low_i8x16(vb));
        let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(va), i16x8_extend_high_i8x16(vb));
        acc = i32x4_add(acc, i32x4_add(lo, hi));
    }
    i32x4_extract_lane::<0>(acc)
        + i32x4_extract_lane::<1>(acc)
        + i32x4_extract_lane::<2>(acc)
        + i32x4_extract_lane::<3>(acc)
}

/// `sum a[i] * b[i]` over equal lengths that are a multiple of 16, exactly: SSE2 (part of every
/// x86-64), the same widening multiply-add pairs as the simd128 version (`pmaddwd`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    use core::arch::x86_64::*;
    assert!(a.len() == b.len() && a.len().is_multiple_of(16));
    // SAFETY: SSE2 is always present on x86-64; each chunk is exactly 16 bytes and the loads
    // are unaligned loads.
    unsafe {
        let mut acc = _mm_setzero_si128();
        for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
            let (va, vb) = (_mm_loadu_si128(ca.as_ptr().cast()), _mm_loadu_si128(cb.as_ptr().cast()));
            // Sign-extend to i16: each byte duplicated into a word, then shifted down.
            let a_lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(va, va));
            let a_hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(va, va));
            let b_lo = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(vb, vb));
            let b_hi = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(vb, vb));
            acc = _mm_add_epi32(acc, _mm_add_epi32(_mm_madd_epi16(a_lo, b_lo), _mm_madd_epi16(a_hi, b_hi)));
        }
        let pairs = _mm_add_epi32(acc, _mm_shuffle_epi32::<0b01_00_11_10>(acc));
        _mm_cvtsi128_si32(_mm_add_epi32(pairs, _mm_shuffle_epi32::<0b10_11_00_01>(pairs)))
    }
}

/// `sum a[i] * b[i]` over equal lengths that are a multiple of 16, exactly (other targets, and
/// wasm32 without simd128).
#[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
#[inline(always)]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_portable(a, b)
}

/// [`dot_i8`] as a loop the compiler vectorises: pairs of products summed per lane, the shape
/// of `pmaddwd` / `i32x4.dot_i16x8_s`.
#[inline(always)]
pub fn dot_i8_portable(a: &[i8], b: &[i8]) -> i32 {
    assert!(a.len() == b.len() && a.len().is_multiple_of(16));
    let mut acc = [0i32; 8];
    for (ca, cb) in a.chunks_exact(16).zip(b.chunks_exact(16)) {
        for l in 0..8 {
            acc[l] += i32::from(ca[2 * l]) * i32::from(cb[2 * l]) + i32::from(ca[2 * l + 1]) * i32::from(cb[2 * l + 1]);
        }
    }
    acc.iter().sum()
}

/// The fast kernels: each weight block is unpacked into `i8` lanes once, then multiplied with
/// that block of every token's activations ([`dot_i8`]), so a prompt's tokens share the unpacking
/// and the pass over the weights.
mod fast {
    use super::*;

    /// The 32 values of a nibble block (`qs[j]` low nibble is element j, high nibble element
    /// j + 16), minus `offset`, with the 5th bits of `qh` (bit j for element j) when given.
    #[inline(always)]
    fn unpack32(qs: &[u8], qh: Option<u32>, offset: i8, out: &mut [i8; QK]) {
        let (lo, hi) = out.split_at_mut(16);
        for j in 0..16 {
            lo[j] = (qs[j] & 0x0f) as i8;
            hi[j] = (qs[j] >> 4) as i8;
        }
        if let Some(qh) = qh {
            for j in 0..16 {
                lo[j] |= (((qh >> j) & 1) << 4) as i8;
                hi[j] |= (((qh >> (j + 16)) & 1) << 4) as i8;
            }
        }
        for v in out.iter_mut() {
            *v -= offset;
        }
    }

    /// The 32-element formats: `(d_w * d_a) * isum`, plus `m * (d_a * sum(a))` with a minimum.
    /// `bytes` per block, `qh` and `qs` offsets in it, whether it has a minimum, the quant offset.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn blocks32(
        w: &[u8],
        a: &QuantActs,
        out: &mut [f32],
        bytes: usize,
        qh_at: Option<usize>,
        qs_at: usize,
        min: bool,
        off: i8,
    ) {
        let (cols, bpr) = (a.cols, a.cols / QK);
        let mut vals = [0i8; QK];
        for (k, b) in w.chunks_exact(bytes).enumerate() {
            let qh = qh_at.map(|o| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
            unpack32(&b[qs_at..qs_at + 16], qh, off, &mut vals);
            let (d, m) = (f16_at(b, 0), if min { f16_at(b, 2) } else { 0.0 });
            for (i, o) in out.iter_mut().enumerate() {
                let at = i * cols + k * QK;
                let isum = dot_i8(&vals, &a.qs[at..at + QK]);
                *o += (d * a.d[i * bpr + k]) * isum as f32;
                if min {
                    *o += m * a.sum[i * bpr + k];
                }
            }
        }
    }

    pub fn q4_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        blocks32(w, a, out, 18, None, 2, false, 8)
    }

    pub fn q4_1(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        blocks32(w, a, out, 20, None, 4, true, 0)
    }

    pub fn q5_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        blocks32(w, a, out, 22, Some(2), 6, false, 16)
    }

    pub fn q5_1(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        blocks32(w, a, out, 24, Some(4), 8, true, 0)
    }

    pub fn q8_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        let (cols, bpr) = (a.cols, a.cols / QK);
        for (k, b) in w.chunks_exact(34).enumerate() {
            let qs = as_i8(&b[2..34]);
            let d = f16_at(b, 0);
            for (i, o) in out.iter_mut().enumerate() {
                let at = i * cols + k * QK;
                let isum = dot_i8(qs, &a.qs[at..at + QK]);
                *o += (d * a.d[i * bpr + k]) * isum as f32;
            }
        }
    }

    /// Q4_K and Q5_K (with `qh`): eight sub-blocks of 32 with 6-bit scales and minimums.
    #[inline(always)]
    fn k45(w: &[u8], a: &QuantActs, out: &mut [f32], bytes: usize, five: bool) {
        let (cols, bpr) = (a.cols, a.cols / QK);
        let mut vals = [0i8; QK_K];
        for (k, b) in w.chunks_exact(bytes).enumerate() {
            let qs = if five { &b[48..176] } else { &b[16..144] };
            for c in 0..4 {
                let (lo, hi) = vals[64 * c..64 * c + 64].split_at_mut(32);
                for l in 0..32 {
                    lo[l] = (qs[32 * c + l] & 0x0f) as i8;
                    hi[l] = (qs[32 * c + l] >> 4) as i8;
                }
            }
            if five {
                let qh = &b[16..48];
                for (j, sub) in vals.chunks_exact_mut(32).enumerate() {
                    for l in 0..32 {
                        sub[l] |= (((qh[l] >> j) & 1) << 4) as i8;
                    }
                }
            }
            let sm: [(f32, f32); 8] = std::array::from_fn(|j| {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                (f16_at(b, 0) * sc as f32, f16_at(b, 2) * m as f32)
            });
            for (i, o) in out.iter_mut().enumerate() {
                let at = i * cols + k * QK_K;
                let ab = i * bpr + k * 8;
                for (j, &(dsc, dm)) in sm.iter().enumerate() {
                    let isum = dot_i8(&vals[32 * j..32 * j + 32], &a.qs[at + 32 * j..at + 32 * j + 32]);
                    *o += dsc * (a.d[ab + j] * isum as f32) - dm * a.sum[ab + j];
                }
            }
        }
    }

    pub fn q4_k(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        k45(w, a, out, 144, false)
    }

    pub fn q5_k(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        k45(w, a, out, 176, true)
    }

    pub fn q6_k(w: &[u8], a: &QuantActs, out: &mut [f32]) {
        let (cols, bpr) = (a.cols, a.cols / QK);
        let mut vals = [0i8; QK_K];
        for (k, b) in w.chunks_exact(210).enumerate() {
            for h in 0..2 {
                let ql = &b[64 * h..64 * h + 64];
                let qh = &b[128 + 32 * h..128 + 32 * h + 32];
                let out = &mut vals[128 * h..128 * h + 128];
                for l in 0..32 {
                    out[l] = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i8 - 32;
                    out[l + 32] = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32;
                    out[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32;
                    out[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32;
                }
            }
            let sc: [i32; 16] = std::array::from_fn(|s| i32::from(b[192 + s] as i8));
            let d = f16_at(b, 208);
            for (i, o) in out.iter_mut().enumerate() {
                let at = i * cols + k * QK_K;
                let ab = i * bpr + k * 8;
                for j in 0..8 {
                    let (s0, s1) = (32 * j, 32 * j + 16);
                    let isum = sc[2 * j] * dot_i8(&vals[s0..s0 + 16], &a.qs[at + s0..at + s0 + 16])
                        + sc[2 * j + 1] * dot_i8(&vals[s1..s1 + 16], &a.qs[at + s1..at + s1 + 16]);
                    *o += d * (a.d[ab + j] * isum as f32);
                }
            }
        }
    }

    /// The 32 quants of a Q8_0 block as `i8`.
    #[inline(always)]
    fn as_i8(b: &[u8]) -> &[i8; QK] {
        let b: &[u8; QK] = b.try_into().expect("32 bytes");
        // SAFETY: u8 and i8 have the same size and alignment, and every bit pattern is valid.
        unsafe { &*(b as *const [u8; QK]).cast::<[i8; QK]>() }
    }
}

/// The reference kernels: one element at a time, straight from the block layouts.
pub mod reference {
    use super::*;

    /// Element `e` (0..32) of a nibble block with optional 5th bits.
    fn nibble(qs: &[u8], qh: Option<u32>, e: usize) -> i32 {
        let low = if e < 16 { qs[e] & 0x0f } else { qs[e - 16] >> 4 };
        let high = qh.map_or(0, |h| ((h >> e) & 1) << 4);
        i32::from(low) + high as i32
    }

    fn blocks32(w: &[u8], a: Q8Row<'_>, bytes: usize, qh_at: Option<usize>, qs_at: usize, min: bool, off: i32) -> f32 {
        let mut acc = 0f32;
        for (k, b) in w.chunks_exact(bytes).enumerate() {
            let qh = qh_at.map(|o| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]));
            let mut isum = 0i32;
            for e in 0..QK {
                isum += (nibble(&b[qs_at..qs_at + 16], qh, e) - off) * i32::from(a.qs[k * QK + e]);
            }
            acc += (f16_at(b, 0) * a.d[k]) * isum as f32;
            if min {
                acc += f16_at(b, 2) * a.sum[k];
            }
        }
        acc
    }

    pub fn q4_0(w: &[u8], a: Q8Row<'_>) -> f32 {
        blocks32(w, a, 18, None, 2, false, 8)
    }

    pub fn q4_1(w: &[u8], a: Q8Row<'_>) -> f32 {
        blocks32(w, a, 20, None, 4, true, 0)
    }

    pub fn q5_0(w: &[u8], a: Q8Row<'_>) -> f32 {
        blocks32(w, a, 22, Some(2), 6, false, 16)
    }

    pub fn q5_1(w: &[u8], a: Q8Row<'_>) -> f32 {
        blocks32(w, a, 24, Some(4), 8, true, 0)
    }

    pub fn q8_0(w: &[u8], a: Q8Row<'_>) -> f32 {
        let mut acc = 0f32;
        for (k, b) in w.chunks_exact(34).enumerate() {
            let mut isum = 0i32;
            for e in 0..QK {
                isum += i32::from(b[2 + e] as i8) * i32::from(a.qs[k * QK + e]);
            }
            acc += (f16_at(b, 0) * a.d[k]) * isum as f32;
        }
        acc
    }

    /// Q4_K / Q5_K: per sub-block j of 32, `(d * sc_j) * (d_a * isum) - (dmin * m_j) * sum_a`.
    fn k45(w: &[u8], a: Q8Row<'_>, bytes: usize, five: bool) -> f32 {
        let mut acc = 0f32;
        for (k, b) in w.chunks_exact(bytes).enumerate() {
            let qs = if five { &b[48..176] } else { &b[16..144] };
            for j in 0..8 {
                let (sc, m) = scale_min_k4(j, &b[4..16]);
                let mut dot = 0i32;
                for l in 0..32 {
                    let mut q = i32::from((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f);
                    if five {
                        q += i32::from((b[16 + l] >> j) & 1) << 4;
                    }
                    dot += q * i32::from(a.qs[k * QK_K + 32 * j + l]);
                }
                let ab = k * 8 + j;
                acc += (f16_at(b, 0) * sc as f32) * (a.d[ab] * dot as f32) - (f16_at(b, 2) * m as f32) * a.sum[ab];
            }
        }
        acc
    }

    pub fn q4_k(w: &[u8], a: Q8Row<'_>) -> f32 {
        k45(w, a, 144, false)
    }

    pub fn q5_k(w: &[u8], a: Q8Row<'_>) -> f32 {
        k45(w, a, 176, true)
    }

    /// Q6_K: element e of half h = e / 128 (r = e % 128) has its low 4 bits in nibble r / 64 of
    /// `ql[64h + r % 64]`, its high 2 bits in pair r / 32 of `qh[32h + r % 32]`, scale e / 16.
    pub fn q6_k(w: &[u8], a: Q8Row<'_>) -> f32 {
        let mut acc = 0f32;
        for (k, b) in w.chunks_exact(210).enumerate() {
            for j in 0..8 {
                let mut isum = 0i32;
                for s in [2 * j, 2 * j + 1] {
                    let mut dot = 0i32;
                    for e in 16 * s..16 * s + 16 {
                        let (h, r) = (e / 128, e % 128);
                        let low = (b[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
                        let high = (b[128 + 32 * h + r % 32] >> (2 * (r / 32))) & 3;
                        let q = i32::from(low | (high << 4)) - 32;
                        dot += q * i32::from(a.qs[k * QK_K + e]);
                    }
                    isum += i32::from(b[192 + s] as i8) * dot;
                }
                acc += f16_at(b, 208) * (a.d[k * 8 + j] * isum as f32);
            }
        }
        acc
    }
}

/// A positive f16 in [2^-9, 2^-4): a sane block scale.
fn scale_bits(rng: &mut Rng) -> [u8; 2] {
    let exp = 6 + rng.below(5) as u16;
    let man = rng.below(1024) as u16;
    ((exp << 10) | man).to_le_bytes()
}

/// `rows` random rows of `cols` in format `ty` (one with a [`kernel`]): random quant bytes, sane
/// scales (and a negative minimum, as the quantizers write it, for the formats with one). For
/// the kernel tests, natively and in the browser.
pub fn random_blocks(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..rows * cols / ty.block_size() * ty.type_size()).map(|_| rng.byte()).collect();
    for b in bytes.chunks_exact_mut(ty.type_size()) {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => b[0..2].copy_from_slice(&scale_bits(rng)),
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => {
                b[0..2].copy_from_slice(&scale_bits(rng));
                let mut m = scale_bits(rng);
                if ty == GgmlType::Q4_1 || ty == GgmlType::Q5_1 {
                    m[1] |= 0x80; // the minimum is usually negative
                }
                b[2..4].copy_from_slice(&m);
            }
            GgmlType::Q6_K => b[208..210].copy_from_slice(&scale_bits(rng)),
            _ => panic!("random_blocks: {ty} has no quantized kernel"),
        }
    }
    bytes
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;
