//! AVX2 versions of the fast kernels, chosen at run time on x86-64 CPUs that have AVX2 (see
//! [`super::kernel`]). The algorithm of ggml-cpu's `ggml_vec_dot_*` AVX2 code: a weight block is
//! unpacked in registers (nibbles split with a mask and a shift, 5th bits spread from a `u32`
//! with a byte shuffle), and 32 products at once are one `vpmaddubsw` (unsigned x signed bytes
//! to pairs of `i16`) and one `vpmaddwd` (pairs to `i32`). Signed weights go through the sign
//! trick (`|w|` times `a` with `w`'s sign). No `i16` can saturate: at most 2 * 128 * 127.
//! The integer sums are exact and the float operations are the reference's, in its order, so
//! these kernels equal [`super::reference`] bit for bit.

use core::arch::x86_64::*;

use super::{QK, QuantActs, f16_at, scale_min_k4};
use crate::gguf::QK_K;

/// Whether this CPU runs these kernels (and `HEARTH_CPU_NO_AVX2` is not set, which keeps the
/// baseline SSE2 kernels for a before/after measurement).
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::is_x86_feature_detected!("avx2") && std::env::var_os("HEARTH_CPU_NO_AVX2").is_none())
}

/// The 32 bytes at `p`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load32<T>(p: &[T]) -> __m256i {
    debug_assert!(size_of_val(p) >= 32);
    // SAFETY (caller): AVX2 present; the slice holds at least 32 bytes, read unaligned.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

/// The sum of the eight `i32` lanes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s)))
}

/// Pairwise `i16` products of unsigned `w` and signed `a` bytes, summed in pairs to eight `i32`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_u(w: __m256i, a: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
}

/// [`dot_u`] for signed `w`: `|w|` times `a` carrying `w`'s sign.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn dot_s(w: __m256i, a: __m256i) -> __m256i {
    // SAFETY (caller): AVX2 present.
    unsafe { dot_u(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)) }
}

/// The 32 nibbles of 16 bytes: low nibbles are elements 0..16, high nibbles 16..32.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn nibbles32(qs: &[u8]) -> __m256i {
    debug_assert!(qs.len() >= 16);
    // SAFETY (caller): AVX2 present; 16 bytes are read unaligned.
    unsafe {
        let v = _mm_loadu_si128(qs.as_ptr().cast());
        let m = _mm_set1_epi8(0x0f);
        _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16::<4>(v), m), _mm_and_si128(v, m))
    }
}

/// 0xFF in byte j where bit j of `bits` is set, else 0 (ggml's `bytes_from_bits_32`).
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn bits32(bits: u32) -> __m256i {
    let spread = _mm256_set_epi64x(0x0303_0303_0303_0303, 0x0202_0202_0202_0202, 0x0101_0101_0101_0101, 0);
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits as i32), spread);
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi64x(-1))
}

/// The 32-element formats: per block `vals` (an `__m256i` from the block bytes `b`) and whether
/// they are signed, then the reference's `(d_w * d_a) * isum` (+ `m * (d_a * sum(a))`).
macro_rules! blocks32 {
    ($w:expr, $a:expr, $out:expr, $bytes:expr, $min:expr, |$b:ident| $vals:expr, $signed:expr) => {{
        let (w, a, out): (&[u8], &QuantActs, &mut [f32]) = ($w, $a, $out);
        let (cols, bpr) = (a.cols, a.cols / QK);
        if let [o] = out {
            // One token (a decode step): the sum stays in a register across the row's blocks
            // instead of going through memory at every block; the same operations in the same
            // order, so the same bits.
            let mut acc = *o;
            for (k, $b) in w.chunks_exact($bytes).enumerate() {
                let vals = $vals;
                let (d, m) = (f16_at($b, 0), if $min { f16_at($b, 2) } else { 0.0 });
                let av = load32(&a.qs[k * QK..k * QK + QK]);
                let isum = hsum(if $signed { dot_s(vals, av) } else { dot_u(vals, av) });
                acc += (d * a.d[k]) * isum as f32;
                if $min {
                    acc += m * a.sum[k];
                }
            }
            *o = acc;
            return;
        }
        for (k, $b) in w.chunks_exact($bytes).enumerate() {
            let vals = $vals;
            let (d, m) = (f16_at($b, 0), if $min { f16_at($b, 2) } else { 0.0 });
            for (i, o) in out.iter_mut().enumerate() {
                let at = i * cols + k * QK;
                let av = load32(&a.qs[at..at + QK]);
                let isum = hsum(if $signed { dot_s(vals, av) } else { dot_u(vals, av) });
                *o += (d * a.d[i * bpr + k]) * isum as f32;
                if $min {
                    *o += m * a.sum[i * bpr + k];
                }
            }
        }
    }};
}

fn qh32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[target_feature(enable = "avx2")]
unsafe fn q4_0_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here; the loads read inside the block and the activations.
    unsafe { blocks32!(w, a, out, 18, false, |b| _mm256_sub_epi8(nibbles32(&b[2..18]), _mm256_set1_epi8(8)), true) }
}

#[target_feature(enable = "avx2")]
unsafe fn q4_1_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here; the loads read inside the block and the activations.
    unsafe { blocks32!(w, a, out, 20, true, |b| nibbles32(&b[4..20]), false) }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_0_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // (q | h << 4) - 16: with h set that is q, without it q - 16 = q | 0xF0 as a signed byte.
    // SAFETY: AVX2 is enabled here; the loads read inside the block and the activations.
    unsafe {
        blocks32!(
            w,
            a,
            out,
            22,
            false,
            |b| _mm256_or_si256(nibbles32(&b[6..22]), _mm256_andnot_si256(bits32(qh32(b, 2)), _mm256_set1_epi8(-16))),
            true
        )
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_1_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here; the loads read inside the block and the activations.
    unsafe {
        blocks32!(
            w,
            a,
            out,
            24,
            true,
            |b| _mm256_or_si256(nibbles32(&b[8..24]), _mm256_and_si256(bits32(qh32(b, 4)), _mm256_set1_epi8(0x10))),
            false
        )
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q8_0_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here; the loads read inside the block and the activations.
    unsafe { blocks32!(w, a, out, 34, false, |b| load32(&b[2..34]), true) }
}

/// Q4_K and Q5_K (with `qh`): the eight sub-blocks of 32 unpacked once, then per token the
/// reference's `(d * sc_j) * (d_a * isum) - (dmin * m_j) * sum_a`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn k45(w: &[u8], a: &QuantActs, out: &mut [f32], bytes: usize, five: bool) {
    let (cols, bpr) = (a.cols, a.cols / QK);
    // SAFETY (caller): AVX2 present; every load below reads 32 bytes inside the block.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let one = _mm256_set1_epi8(1);
        let mut vals = [_mm256_setzero_si256(); 8];
        for (k, b) in w.chunks_exact(bytes).enumerate() {
            let qs = if five { &b[48..176] } else { &b[16..144] };
            for c in 0..4 {
                let v = load32(&qs[32 * c..]);
                vals[2 * c] = _mm256_and_si256(v, m4);
                vals[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
            }
            if five {
                let qh = load32(&b[16..48]);
                for (j, v) in vals.iter_mut().enumerate() {
                    let bit = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j as i32)), one);
                    *v = _mm256_or_si256(*v, _mm256_slli_epi16::<4>(bit));
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
                    let isum = hsum(dot_u(vals[j], load32(&a.qs[at + 32 * j..at + 32 * j + 32])));
                    *o += dsc * (a.d[ab + j] * isum as f32) - dm * a.sum[ab + j];
                }
            }
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn q4_k_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here.
    unsafe { k45(w, a, out, 144, false) }
}

#[target_feature(enable = "avx2")]
unsafe fn q5_k_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    // SAFETY: AVX2 is enabled here.
    unsafe { k45(w, a, out, 176, true) }
}

/// Q6_K: per half, four sub-blocks of 32 from 64 `ql` bytes (low/high nibbles) and 32 `qh`
/// bytes (bit pairs), minus 32; each pair of 16-scales applied by one `vpmaddwd` with
/// `[sc_2j x 8, sc_2j+1 x 8]`, so the `i32` sum is `sc_2j * dot_lo + sc_2j+1 * dot_hi`.
#[target_feature(enable = "avx2")]
unsafe fn q6_k_avx2(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    let (cols, bpr) = (a.cols, a.cols / QK);
    let m4 = _mm256_set1_epi8(0x0f);
    let m2 = _mm256_set1_epi8(3);
    let m32 = _mm256_set1_epi8(32);
    let mut vals = [_mm256_setzero_si256(); 8];
    let mut scales = [_mm256_setzero_si256(); 8];
    for (k, b) in w.chunks_exact(210).enumerate() {
        // SAFETY: AVX2 is enabled here; every load reads 32 bytes inside the block.
        unsafe {
            for h in 0..2 {
                let (ql0, ql1) = (load32(&b[64 * h..]), load32(&b[64 * h + 32..]));
                let qh = load32(&b[128 + 32 * h..]);
                let high = |s: __m256i| _mm256_slli_epi16::<4>(_mm256_and_si256(s, m2));
                let g = [
                    _mm256_or_si256(_mm256_and_si256(ql0, m4), high(qh)),
                    _mm256_or_si256(_mm256_and_si256(ql1, m4), high(_mm256_srli_epi16::<2>(qh))),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
                        high(_mm256_srli_epi16::<4>(qh)),
                    ),
                    _mm256_or_si256(
                        _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
                        high(_mm256_srli_epi16::<6>(qh)),
                    ),
                ];
                for (c, v) in g.into_iter().enumerate() {
                    vals[4 * h + c] = _mm256_sub_epi8(v, m32);
                }
            }
            for (j, s) in scales.iter_mut().enumerate() {
                let (lo, hi) = (i16::from(b[192 + 2 * j] as i8), i16::from(b[193 + 2 * j] as i8));
                *s = _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
            }
        }
        let d = f16_at(b, 208);
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * cols + k * QK_K;
            let ab = i * bpr + k * 8;
            for j in 0..8 {
                // SAFETY: AVX2 is enabled here; 32 activation bytes are read.
                let isum = unsafe {
                    let av = load32(&a.qs[at + 32 * j..at + 32 * j + 32]);
                    let w = vals[j];
                    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(av, w));
                    hsum(_mm256_madd_epi16(p, scales[j]))
                };
                *o += d * (a.d[ab + j] * isum as f32);
            }
        }
    }
}

/// Safe entry points: [`super::kernel`] hands them out only when [`available`] said yes.
macro_rules! entry {
    ($($name:ident => $imp:ident),*) => {$(
        pub fn $name(w: &[u8], a: &QuantActs, out: &mut [f32]) {
            debug_assert!(available());
            // SAFETY: only reachable through `kernel`, which checks `available()` first.
            unsafe { $imp(w, a, out) }
        }
    )*};
}

entry!(q4_0 => q4_0_avx2, q4_1 => q4_1_avx2, q5_0 => q5_0_avx2, q5_1 => q5_1_avx2, q8_0 => q8_0_avx2,
    q4_k => q4_k_avx2, q5_k => q5_k_avx2, q6_k => q6_k_avx2);
