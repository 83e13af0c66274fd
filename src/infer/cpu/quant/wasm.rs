//! simd128 versions of the nibble-format kernels (wasm32 built with `+simd128`), the algorithm
//! of ggml-cpu's `ggml_vec_dot_*` wasm_simd128 code: a weight block is unpacked in registers
//! (nibbles split with a mask and a byte shift, 5th bits spread from the `u32` with a byte
//! swizzle and a bit mask), then each 16 lanes are widened to `i16` and multiplied in pairs
//! (`i32x4.dot_i16x8_s`). The integer sums are exact and the float operations are the
//! reference's, in its order, so these kernels equal [`super::reference`] bit for bit.

use core::arch::wasm32::*;

use super::{LANES, QK, QuantActs, TOKENS, f16_at, reduce, scale_min_k4};
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

/// The four `i32` sums of `s[0]..s[3]`'s lanes each, as one vector `[sum s0, .., sum s3]`
/// (a 4x4 transpose with shuffles, then adds).
#[inline(always)]
fn hsum4(s: [v128; 4]) -> v128 {
    let u01 = i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(s[0], s[1]), i32x4_shuffle::<1, 5, 3, 7>(s[0], s[1]));
    let u23 = i32x4_add(i32x4_shuffle::<0, 4, 2, 6>(s[2], s[3]), i32x4_shuffle::<1, 5, 3, 7>(s[2], s[3]));
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(u01, u23), i32x4_shuffle::<2, 3, 6, 7>(u01, u23))
}

/// f16 bits in the low half of each `u32` lane to f32, exactly as [`crate::gguf::f16_to_f32`]:
/// the exponent and mantissa shifted into an f32 and multiplied by 2^112 (exact, subnormals
/// included), infinities and NaNs set apart, then the sign.
#[inline(always)]
fn f16x4_to_f32(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let mag = v128_and(h, u32x4_splat(0x7fff));
    let bits = i32x4_shl(mag, 13);
    let finite = f32x4_mul(bits, f32x4_splat(f32::from_bits(0x7780_0000))); // 2^112
    let special = v128_or(bits, u32x4_splat(0x7f80_0000));
    v128_or(v128_bitselect(special, finite, u32x4_ge(mag, u32x4_splat(0x7c00))), sign)
}

/// The `u32` at byte `at` of `b`.
#[inline(always)]
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The 32-element formats: `bytes` per block, a minimum or not, and `vals` giving a block's
/// 32 signed quants as two vectors; per token the reference's `(d_w * d_a) * isum`
/// (+ `m * (d_a * sum(a))`) into partial sum `k % LANES`, four blocks at a time as one `f32x4`.
#[inline(always)]
fn blocks32(w: &[u8], a: &QuantActs, out: &mut [f32], bytes: usize, min: bool, vals: impl Fn(&[u8]) -> (v128, v128)) {
    let (cols, bpr) = (a.cols, a.cols / QK);
    let blocks = w.len() / bytes;
    let groups = blocks / LANES;
    // The activations pre-widened to i16: per 16 weight lanes two extends and two multiply-adds.
    let dot = |v: (v128, v128), q: &[i16]| {
        let lo = i32x4_add(
            i32x4_dot_i16x8(i16x8_extend_low_i8x16(v.0), load16(q)),
            i32x4_dot_i16x8(i16x8_extend_high_i8x16(v.0), load16(&q[8..])),
        );
        let hi = i32x4_add(
            i32x4_dot_i16x8(i16x8_extend_low_i8x16(v.1), load16(&q[16..])),
            i32x4_dot_i16x8(i16x8_extend_high_i8x16(v.1), load16(&q[24..])),
        );
        i32x4_add(lo, hi)
    };
    for (c, outc) in out.chunks_mut(TOKENS).enumerate() {
        let mut acc = [f32x4_splat(0.0); TOKENS];
        for (g, group) in w[..groups * LANES * bytes].chunks_exact(LANES * bytes).enumerate() {
            let (b0, rest) = group.split_at(bytes);
            let (b1, rest) = rest.split_at(bytes);
            let (b2, b3) = rest.split_at(bytes);
            let v = [vals(b0), vals(b1), vals(b2), vals(b3)];
            // d (and m) of the four blocks: the first two (and next two) bytes of each.
            let dm = u32x4(u32_at(b0, 0), u32_at(b1, 0), u32_at(b2, 0), u32_at(b3, 0));
            let d = f16x4_to_f32(v128_and(dm, u32x4_splat(0xffff)));
            let m = if min { f16x4_to_f32(u32x4_shr(dm, 16)) } else { d };
            for (t, acc) in acc[..outc.len()].iter_mut().enumerate() {
                let i = c * TOKENS + t;
                let at = i * cols + LANES * g * QK;
                let q = &a.qs16[at..at + LANES * QK];
                let s = [dot(v[0], q), dot(v[1], &q[QK..]), dot(v[2], &q[2 * QK..]), dot(v[3], &q[3 * QK..])];
                let isum = f32x4_convert_i32x4(hsum4(s));
                let ab = i * bpr + LANES * g;
                *acc = f32x4_add(*acc, f32x4_mul(f32x4_mul(d, load16(&a.d[ab..ab + LANES])), isum));
                if min {
                    *acc = f32x4_add(*acc, f32x4_mul(m, load16(&a.sum[ab..ab + LANES])));
                }
            }
        }
        for (t, o) in outc.iter_mut().enumerate() {
            let i = c * TOKENS + t;
            let mut lanes = [
                f32x4_extract_lane::<0>(acc[t]),
                f32x4_extract_lane::<1>(acc[t]),
                f32x4_extract_lane::<2>(acc[t]),
                f32x4_extract_lane::<3>(acc[t]),
            ];
            for k in groups * LANES..blocks {
                let b = &w[k * bytes..(k + 1) * bytes];
                let at = i * cols + k * QK;
                let isum = hsum(dot(vals(b), &a.qs16[at..at + QK]));
                lanes[k % LANES] += (f16_at(b, 0) * a.d[i * bpr + k]) * isum as f32;
                if min {
                    lanes[k % LANES] += f16_at(b, 2) * a.sum[i * bpr + k];
                }
            }
            *o += reduce(lanes);
        }
    }
}

/// A nibble block's 32 quants (low nibbles elements 0..16, high 16..32) with the 5th bits of the
/// `u32` at `qh_at` when given, minus `off`.
#[inline(always)]
fn nibbles(b: &[u8], qs_at: usize, qh_at: Option<usize>, off: i8) -> (v128, v128) {
    let v = load16(&b[qs_at..qs_at + 16]);
    let m4 = u8x16_splat(0x0f);
    let (mut lo, mut hi) = (v128_and(v, m4), u8x16_shr(v, 4));
    if let Some(o) = qh_at {
        let qh = u32_at(b, o);
        lo = v128_or(lo, fifth_bits::<0>(qh));
        hi = v128_or(hi, fifth_bits::<1>(qh));
    }
    if off != 0 {
        lo = i8x16_sub(lo, i8x16_splat(off));
        hi = i8x16_sub(hi, i8x16_splat(off));
    }
    (lo, hi)
}

pub fn q4_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    blocks32(w, a, out, 18, false, |b| nibbles(b, 2, None, 8))
}

pub fn q4_1(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    blocks32(w, a, out, 20, true, |b| nibbles(b, 4, None, 0))
}

pub fn q5_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    blocks32(w, a, out, 22, false, |b| nibbles(b, 6, Some(2), 16))
}

pub fn q5_1(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    blocks32(w, a, out, 24, true, |b| nibbles(b, 8, Some(4), 0))
}

pub fn q8_0(w: &[u8], a: &QuantActs, out: &mut [f32]) {
    blocks32(w, a, out, 34, false, |b| (load16(&b[2..18]), load16(&b[18..34])))
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
