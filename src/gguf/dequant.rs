//! Decoding ggml tensor data to f32.
//!
//! The reference is gguf-py 0.19 (`gguf.quants.dequantize`), which is what llama.cpp's converter
//! tests against; results here are bit-identical to it (verified by `tests/gguf_real.rs`). That
//! means replicating its f32 operation order exactly, because float arithmetic is not
//! associative: e.g. Q4_K computes `(d * sc) * q - (dmin * m)` with every product rounded to f32,
//! and Q4_1 computes `d * q + m` as two rounded operations (no fused multiply-add; Rust never
//! contracts float ops implicitly, so plain `*` and `+` are exact matches for numpy's ufuncs).
//!
//! Block layouts are those of `block_q4_0` ... `block_q6_K` in llama.cpp's
//! `ggml/src/ggml-common.h`; each decoder below notes where an element's bits live.

use super::error::{GgufError, Result};
use super::types::{GgmlType, QK_K};

/// Converts IEEE half-precision bits to f32, exactly (every f16 is representable in f32).
///
/// NaN payloads are kept (shifted into the f32 mantissa, quiet bit untouched), matching numpy's
/// `astype(np.float32)` and ggml's `ggml_compute_fp16_to_fp32`.
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x03ff);
    let bits = match exp {
        0 => {
            // Zero or subnormal: man * 2^-24, exact in f32 (10 significant bits, no rounding).
            let magnitude = man as f32 * (1.0 / 16_777_216.0);
            magnitude.to_bits()
        }
        0x1f => 0x7f80_0000 | (man << 13),
        // Rebias the exponent from 15 to 127.
        _ => ((exp + 112) << 23) | (man << 13),
    };
    f32::from_bits(sign | bits)
}

/// Converts bfloat16 bits to f32: bf16 is the upper half of an f32, so this is a shift.
#[inline]
pub fn bf16_to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[i], b[i + 1]]))
}

/// Decodes `n_elements` elements of type `ty` from `bytes` into `out`.
///
/// `bytes` must be exactly the data of `n_elements` elements (a whole number of blocks) and `out`
/// exactly `n_elements` long; anything else is a [`GgufError::SizeMismatch`]. Types without a
/// decoder give [`GgufError::UnsupportedBlockFormat`] (see [`GgmlType::is_supported_for_decode`]).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n_elements: usize, out: &mut [f32]) -> Result<()> {
    if !ty.is_supported_for_decode() {
        return Err(GgufError::UnsupportedBlockFormat(ty));
    }
    let block = ty.block_size();
    if !n_elements.is_multiple_of(block) {
        return Err(GgufError::SizeMismatch {
            what: format!("{ty} element count (must be a multiple of {block})"),
            expected: (n_elements / block * block) as u64,
            found: n_elements as u64,
        });
    }
    // None (overflow) can never equal a real slice length, so it is reported as a mismatch too.
    let expected_bytes = ty.byte_size(n_elements as u64);
    if expected_bytes != Some(bytes.len() as u64) {
        return Err(GgufError::SizeMismatch {
            what: format!("{ty} data bytes for {n_elements} elements"),
            expected: expected_bytes.unwrap_or(u64::MAX),
            found: bytes.len() as u64,
        });
    }
    if out.len() != n_elements {
        return Err(GgufError::SizeMismatch {
            what: "output length".into(),
            expected: n_elements as u64,
            found: out.len() as u64,
        });
    }
    let ts = ty.type_size();
    let blocks = bytes.chunks_exact(ts).zip(out.chunks_exact_mut(block));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, o)| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => blocks.for_each(|(b, o)| o[0] = f16_at(b, 0)),
        GgmlType::BF16 => blocks.for_each(|(b, o)| o[0] = bf16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
        GgmlType::Q4_0 => blocks.for_each(|(b, o)| q4_0(b, o)),
        GgmlType::Q4_1 => blocks.for_each(|(b, o)| q4_1(b, o)),
        GgmlType::Q5_0 => blocks.for_each(|(b, o)| q5_0(b, o)),
        GgmlType::Q5_1 => blocks.for_each(|(b, o)| q5_1(b, o)),
        GgmlType::Q8_0 => blocks.for_each(|(b, o)| q8_0(b, o)),
        GgmlType::Q2_K => blocks.for_each(|(b, o)| q2_k(b, o)),
        GgmlType::Q3_K => blocks.for_each(|(b, o)| q3_k(b, o)),
        GgmlType::Q4_K => blocks.for_each(|(b, o)| q4_k(b, o)),
        GgmlType::Q5_K => blocks.for_each(|(b, o)| q5_k(b, o)),
        GgmlType::Q6_K => blocks.for_each(|(b, o)| q6_k(b, o)),
        other => return Err(GgufError::UnsupportedBlockFormat(other)),
    }
    Ok(())
}

/// [`dequantize`] into a new vector.
pub fn dequantize_to_vec(ty: GgmlType, bytes: &[u8], n_elements: usize) -> Result<Vec<f32>> {
    // Check sizes before allocating, so a bogus count cannot trigger a huge allocation.
    if !ty.is_supported_for_decode() {
        return Err(GgufError::UnsupportedBlockFormat(ty));
    }
    if ty.byte_size(n_elements as u64) != Some(bytes.len() as u64) {
        // Reports the element-count or byte-count mismatch before looking at the output.
        return dequantize(ty, bytes, n_elements, &mut []).map(|()| Vec::new());
    }
    let mut out = vec![0.0; n_elements];
    dequantize(ty, bytes, n_elements, &mut out)?;
    Ok(out)
}

// In the 32-element formats, byte j of `qs` holds element j in its low nibble and element
// j + 16 in its high nibble.

/// `block_q4_0`: f16 d | 16 bytes of nibbles. x = d * (q - 8).
fn q4_0(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        o[j] = d * f32::from((qs[j] & 0x0f) as i8 - 8);
        o[j + 16] = d * f32::from((qs[j] >> 4) as i8 - 8);
    }
}

/// `block_q4_1`: f16 d | f16 m | 16 bytes of nibbles. x = d * q + m.
fn q4_1(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qs = &b[4..20];
    for j in 0..16 {
        o[j] = d * f32::from(qs[j] & 0x0f) + m;
        o[j + 16] = d * f32::from(qs[j] >> 4) + m;
    }
}

/// The 5th bit of element j of a Q5 block: bit j of the little-endian u32 `qh`.
#[inline]
fn q5_high(qh: u32, j: usize) -> u8 {
    (((qh >> j) & 1) as u8) << 4
}

/// `block_q5_0`: f16 d | u32 qh | 16 bytes of nibbles. x = d * (q - 16).
fn q5_0(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        let lo = (qs[j] & 0x0f) | q5_high(qh, j);
        let hi = (qs[j] >> 4) | q5_high(qh, j + 16);
        o[j] = d * f32::from(lo as i8 - 16);
        o[j + 16] = d * f32::from(hi as i8 - 16);
    }
}

/// `block_q5_1`: f16 d | f16 m | u32 qh | 16 bytes of nibbles. x = d * q + m.
fn q5_1(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let lo = (qs[j] & 0x0f) | q5_high(qh, j);
        let hi = (qs[j] >> 4) | q5_high(qh, j + 16);
        o[j] = d * f32::from(lo) + m;
        o[j + 16] = d * f32::from(hi) + m;
    }
}

/// `block_q8_0`: f16 d | 32 x i8. x = q * d.
fn q8_0(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    for (x, &q) in o.iter_mut().zip(&b[2..34]) {
        *x = f32::from(q as i8) * d;
    }
}

/// `block_q2_K`: 16 scale bytes (low nibble scale, high nibble min) | 64 bytes of 2-bit quants |
/// f16 d | f16 dmin. Element e (16 per sub-block e / 16) is bits 2s..2s+2 of
/// `qs[32 * (e / 128) + e % 32]` with s = (e % 128) / 32. x = (d * sc) * q - (dmin * m).
fn q2_k(b: &[u8], o: &mut [f32]) {
    let scales = &b[0..16];
    let qs = &b[16..80];
    let d = f16_at(b, 80);
    let dmin = f16_at(b, 82);
    for (i, sub) in o.chunks_exact_mut(16).enumerate() {
        let dl = d * f32::from(scales[i] & 0x0f);
        let ml = dmin * f32::from(scales[i] >> 4);
        for (l, x) in sub.iter_mut().enumerate() {
            let e = i * 16 + l;
            let shift = 2 * ((e % 128) / 32);
            let q = (qs[32 * (e / 128) + e % 32] >> shift) & 3;
            *x = dl * f32::from(q) - ml;
        }
    }
}

/// `block_q3_K`: 32 bytes hmask | 64 bytes of 2-bit quants | 12 bytes of 6-bit scales | f16 d.
/// The low 2 bits of element e sit as in Q2_K; its high bit is bit e / 32 of `hmask[e % 32]`,
/// and a *clear* bit subtracts 4. Scale i (6 bits, offset 32) is the nibble
/// `scales[i % 8] >> (4 * (i / 8))` plus bits `scales[8 + i % 4] >> (2 * (i / 4))`.
/// x = (d * (sc - 32)) * q.
fn q3_k(b: &[u8], o: &mut [f32]) {
    let hmask = &b[0..32];
    let qs = &b[32..96];
    let sc = &b[96..108];
    let d = f16_at(b, 108);
    for (i, sub) in o.chunks_exact_mut(16).enumerate() {
        let low = (sc[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (sc[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        let scale = ((low | (high << 4)) as i8).wrapping_sub(32);
        let dl = d * f32::from(scale);
        for (l, x) in sub.iter_mut().enumerate() {
            let e = i * 16 + l;
            let shift = 2 * ((e % 128) / 32);
            let ql = ((qs[32 * (e / 128) + e % 32] >> shift) & 3) as i8;
            let hbit = (hmask[e % 32] >> (e / 32)) & 1;
            let q = ql - (((hbit ^ 1) << 2) as i8);
            *x = dl * f32::from(q);
        }
    }
}

/// The 6-bit (scale, min) pair of sub-block `j` of a Q4_K/Q5_K block (`get_scale_min_k4`).
///
/// Bytes 0..4 hold scales 0..4 in their low 6 bits, bytes 4..8 mins 0..4; scales and mins 4..8
/// are split between the nibbles of bytes 8..12 and the top two bits of bytes 0..8.
#[inline]
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 0x3f, s[j + 4] & 0x3f)
    } else {
        ((s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30), (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30))
    }
}

/// `block_q4_K`: f16 d | f16 dmin | 12 scale bytes | 128 bytes of nibbles. Eight sub-blocks of
/// 32: sub-block 2c uses the low nibbles of `qs[32c..32c+32]`, sub-block 2c+1 the high nibbles.
/// x = (d * sc) * q - (dmin * m).
fn q4_k(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for (j, sub) in o.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(j, scales);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for (x, &q) in sub.iter_mut().zip(chunk) {
            *x = dl * f32::from((q >> shift) & 0x0f) - ml;
        }
    }
}

/// `block_q5_K`: like Q4_K with 32 bytes `qh` before the nibbles; element l of sub-block j gets
/// its 5th bit from bit j of `qh[l]`. x = (d * sc) * q - (dmin * m).
fn q5_k(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 0);
    let dmin = f16_at(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for (j, sub) in o.chunks_exact_mut(32).enumerate() {
        let (sc, m) = scale_min_k4(j, scales);
        let dl = d * f32::from(sc);
        let ml = dmin * f32::from(m);
        let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
        let shift = 4 * (j % 2);
        for (l, x) in sub.iter_mut().enumerate() {
            let q = ((chunk[l] >> shift) & 0x0f) | (((qh[l] >> j) & 1) << 4);
            *x = dl * f32::from(q) - ml;
        }
    }
}

/// `block_q6_K`: 128 bytes `ql` (low nibbles) | 64 bytes `qh` (2-bit pairs) | 16 x i8 scales |
/// f16 d. For element e in half h = e / 128 (r = e % 128): low 4 bits are nibble r / 64 of
/// `ql[64h + r % 64]`, high 2 bits are pair r / 32 of `qh[32h + r % 32]`; scale e / 16.
/// x = (d * scale) * (q - 32).
fn q6_k(b: &[u8], o: &mut [f32]) {
    let d = f16_at(b, 208);
    // Walk each half the way ggml's dequantize_row_q6_K does: lane l of the 32 `qh` bytes
    // feeds elements l, l + 32, l + 64 and l + 96 of the half.
    for h in 0..2 {
        let ql = &b[64 * h..64 * h + 64];
        let qh = &b[128 + 32 * h..128 + 32 * h + 32];
        let sc = &b[192 + 8 * h..192 + 8 * h + 8];
        let out = &mut o[128 * h..128 * h + 128];
        // Scale of sub-block (32 * k + l) / 16, i.e. sc[2k + l / 16], times d.
        let dl: [f32; 8] = std::array::from_fn(|i| d * f32::from(sc[i] as i8));
        for l in 0..32 {
            let is = l / 16;
            let q = [
                (ql[l] & 0x0f) | ((qh[l] & 3) << 4),
                (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4),
                (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
            ];
            for (k, &q) in q.iter().enumerate() {
                out[l + 32 * k] = dl[is + 2 * k] * f32::from(q as i8 - 32);
            }
        }
    }
}

// The fixed offsets above assume 256-element super-blocks.
const _: () = assert!(QK_K == 256);
