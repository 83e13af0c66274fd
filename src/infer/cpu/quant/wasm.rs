//! simd128 versions of the nibble-format kernels (wasm32 built with `+simd128`), the algorithm
//! of ggml-cpu's `ggml_vec_dot_*` wasm_simd128 code: a weight block is unpacked in registers
//! (nibbles split with a mask and a byte shift, 5th bits spread from the `u32` with a byte
//! swizzle and a bit mask), then each 16 lanes are widened to `i16` and multiplied in pairs
//! (`i32x4.dot_i16x8_s`). The integer sums are exact and the float operations are the
//! reference's, in its order, so these kernels equal [`super::reference`] bit for bit.

use core::arch::wasm32::*;

use super::{QK, QuantActs, f16_at, scale_min_k4};
use crate::gguf::QK_K;

/// The 16 bytes at the start of `p`.
#[inline(always)]
fn load16<T>(p: &[T]) -> v128 {
    assert!(size_of_val(p) >= 16);
    // SAFETY: the slice holds at least 16 bytes; `v128_load` has no alignment requirement.
    unsafe { v128_load(p.as_ptr().cast()) }
}

/// `sum w[l] * a[l]` over 16 signed byte lanes, as four `i32` lanes.
#[inline(always)]
fn dot16(w: v128, a: v128) -> v128 {
    let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w), i16x8_extend_low_i8x16(a));
    let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(w), i16x8_extend_high_i8x16(a));
    i32x4_add(lo, hi)
}

#[inline(always)]
fn hsum(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v) + i32x4_extract_lane::<1>(v) + i32x4_extract_lane::<2>(v) + i32x4_extract_lane::<3>(v)
}

/// 0x10 in byte j where bit `16 * HALF + j` of `bits` is set, else 0.
#[inline(always)]
fn fifth_bits<const HALF: u8>(bits: u32) -> v128 {
    let (b0, b1) = (2 * HALF, 2 * HALF + 1);
    let spread = u8x16(b0, b0, b0, b0, b0, b0, b0, b0, b1, b1, b1, b1, b1, b1, b1, b1);
    let bytes = i8x16_swizzle(u32x4_splat(bits), spread);
    let mask = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    v128_and(i8x16_eq(v128_and(bytes, mask), mask), u8x16_splat(0x10))
}

/// The 32-element formats: `bytes` per block, `qh` and `qs` offsets, a minimum or not, the
/// quant offset; per token the reference's `(d_w * d_a) * isum` (+ `m * (d_a * sum(a))`).
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
    let m4 = u8x16_splat(0x0f);
    for (k, b) in w.chunks_exact(bytes).enumerate() {
        let v = load16(&b[qs_at..qs_at + 16]);
        let (mut lo, mut hi) = (v128_and(v, m4), u8x16_shr(v, 4));
        if let Some(o) = qh_at {
            let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            lo = v128_or(lo, fifth_bits::<0>(qh));
            hi = v128_or(hi, fifth_bits::<1>(qh));
        }
        if off != 0 {
            lo = i8x16_sub(lo, i8x16_splat(off));
            hi = i8x16_sub(hi, i8x16_splat(off));
        }
        let (d, m) = (f16_at(b, 0), if min { f16_at(b, 2) } else { 0.0 });
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * cols + k * QK;
            let isum = hsum(i32x4_add(dot16(lo, load16(&a.qs[at..])), dot16(hi, load16(&a.qs[at + 16..]))));
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

/// Q4_K: sub-block 2c is the low nibbles of `qs[32c..32c + 32]`, 2c + 1 the high ones.
pub fn q4_k(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    let (cols, bpr) = (a.cols, a.cols / QK);
    let m4 = u8x16_splat(0x0f);
    let mut vals = [u8x16_splat(0); 16];
    for (k, b) in w.chunks_exact(144).enumerate() {
        let qs = &b[16..144];
        for c in 0..4 {
            let (v0, v1) = (load16(&qs[32 * c..]), load16(&qs[32 * c + 16..]));
            vals[4 * c] = v128_and(v0, m4);
            vals[4 * c + 1] = v128_and(v1, m4);
            vals[4 * c + 2] = u8x16_shr(v0, 4);
            vals[4 * c + 3] = u8x16_shr(v1, 4);
        }
        let sm: [(f32, f32); 8] = std::array::from_fn(|j| {
            let (sc, m) = scale_min_k4(j, &b[4..16]);
            (f16_at(b, 0) * sc as f32, f16_at(b, 2) * m as f32)
        });
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * cols + k * QK_K;
            let ab = i * bpr + k * 8;
            for (j, &(dsc, dm)) in sm.iter().enumerate() {
                let s = at + 32 * j;
                let isum = hsum(i32x4_add(
                    dot16(vals[2 * j], load16(&a.qs[s..])),
                    dot16(vals[2 * j + 1], load16(&a.qs[s + 16..])),
                ));
                *o += dsc * (a.d[ab + j] * isum as f32) - dm * a.sum[ab + j];
            }
        }
    }
}

/// Q6_K: per half, four sub-blocks of 32 from `ql` nibbles and `qh` bit pairs, minus 32; the two
/// 16-scales of a sub-block multiply its two 16-lane sums.
pub fn q6_k(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    let (cols, bpr) = (a.cols, a.cols / QK);
    let (m4, m2, m32) = (u8x16_splat(0x0f), u8x16_splat(3), i8x16_splat(32));
    let mut vals = [u8x16_splat(0); 16];
    for (k, b) in w.chunks_exact(210).enumerate() {
        for h in 0..2 {
            for half in 0..2 {
                let ql0 = load16(&b[64 * h + 16 * half..]);
                let ql1 = load16(&b[64 * h + 32 + 16 * half..]);
                let qh = load16(&b[128 + 32 * h + 16 * half..]);
                let high = |s: v128| i8x16_shl(v128_and(s, m2), 4);
                let g = [
                    v128_or(v128_and(ql0, m4), high(qh)),
                    v128_or(v128_and(ql1, m4), high(u8x16_shr(qh, 2))),
                    v128_or(u8x16_shr(ql0, 4), high(u8x16_shr(qh, 4))),
                    v128_or(u8x16_shr(ql1, 4), high(u8x16_shr(qh, 6))),
                ];
                for (c, v) in g.into_iter().enumerate() {
                    vals[8 * h + 2 * c + half] = i8x16_sub(v, m32);
                }
            }
        }
        let sc: [i32; 16] = std::array::from_fn(|s| i32::from(b[192 + s] as i8));
        let d = f16_at(b, 208);
        for (i, o) in out.iter_mut().enumerate() {
            let at = i * cols + k * QK_K;
            let ab = i * bpr + k * 8;
            for j in 0..8 {
                let s = at + 32 * j;
                let isum = sc[2 * j] * hsum(dot16(vals[2 * j], load16(&a.qs[s..])))
                    + sc[2 * j + 1] * hsum(dot16(vals[2 * j + 1], load16(&a.qs[s + 16..])));
                *o += d * (a.d[ab + j] * isum as f32);
            }
        }
    }
}
