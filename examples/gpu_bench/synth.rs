//! Synthetic GGUFs with the exact shapes and formats of a real one: the real file's header
//! (metadata, vocabulary and tensor infos, up to the start of the tensor data) followed by
//! tensor data of the same sizes, made of valid blocks with random quants and scales of
//! plausible magnitude. A GPU reads the same bytes whatever they hold, so such a file benches
//! like the real one, and it is a few megabytes to carry instead of hundreds.
//!
//! Each block's scales (`f16`) are finite and sized so a weight is about `0.02` in magnitude
//! (the order of a trained model's); norm weights are about 1 and other `f32` vectors (biases)
//! about `0.02`. The generator is a seeded splitmix64: the same header and seed give the same
//! file.

use std::io::{self, Read, Write};

use hearth::gguf::{GgmlType, GgufHeader};

/// The bytes of `file` before its tensor data (the header and its alignment padding).
pub fn header_prefix(file: &[u8]) -> Result<Vec<u8>, String> {
    let header = GgufHeader::parse(file).map_err(|e| e.to_string())?;
    let start = usize::try_from(header.data_offset()).map_err(|e| e.to_string())?;
    file.get(..start).map(<[u8]>::to_vec).ok_or_else(|| format!("the file ends before its tensor data ({start})"))
}

/// A seeded splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn signed(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// `v` as IEEE half-precision bits (round to nearest; `v` is small, finite and non-negative
/// here, so no overflow handling beyond clamping is needed).
fn f16_bits(v: f32) -> u16 {
    let v = v.clamp(0.0, 60000.0);
    let bits = v.to_bits();
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let man = bits & 0x7f_ffff;
    if exp <= 0 {
        // Subnormal: value = man16 * 2^-24.
        (v / f32::powi(2.0, -24)).round() as u16
    } else {
        let h = ((exp as u32) << 10) | (man >> 13);
        let round = (man >> 12) & 1;
        (h + round) as u16
    }
}

/// Where a block of `ty` keeps its `f16` scales: (byte offset, typical value) pairs. The other
/// bytes (quants, packed sub-block scales) are valid whatever they hold.
fn scale_fields(ty: GgmlType) -> Option<&'static [(usize, f32)]> {
    Some(match ty {
        GgmlType::Q4_0 => &[(0, 0.0043)],
        GgmlType::Q4_1 => &[(0, 0.0043), (2, -0.035)],
        GgmlType::Q5_0 => &[(0, 0.0022)],
        GgmlType::Q5_1 => &[(0, 0.0022), (2, -0.035)],
        GgmlType::Q8_0 => &[(0, 0.00027)],
        GgmlType::Q2_K => &[(80, 0.0024), (82, 0.0012)],
        GgmlType::Q3_K => &[(108, 0.0005)],
        GgmlType::Q4_K => &[(0, 0.00014), (2, 0.0011)],
        GgmlType::Q5_K => &[(0, 0.00007), (2, 0.0011)],
        GgmlType::Q6_K => &[(208, 0.000015)],
        _ => return None,
    })
}

/// Fills `out` with `ty` data for the tensor `name`.
fn fill_tensor(rng: &mut Rng, name: &str, ty: GgmlType, out: &mut [u8]) -> Result<(), String> {
    match ty {
        GgmlType::F32 | GgmlType::F16 => {
            let (center, spread) =
                if name.contains("norm") || name.contains("rope_freqs") { (1.0, 0.05) } else { (0.0, 0.035) };
            let width = if ty == GgmlType::F32 { 4 } else { 2 };
            for v in out.chunks_exact_mut(width) {
                let x = center + spread * rng.signed();
                if width == 4 {
                    v.copy_from_slice(&x.to_le_bytes());
                } else {
                    let sign = if x < 0.0 { 0x8000 } else { 0 };
                    v.copy_from_slice(&(sign | f16_bits(x.abs())).to_le_bytes());
                }
            }
        }
        _ => {
            let fields = scale_fields(ty).ok_or_else(|| format!("tensor {name}: no synthesizer for {}", ty.name()))?;
            rng.fill(out);
            let size = ty.type_size();
            for block in out.chunks_exact_mut(size) {
                for &(at, typical) in fields {
                    // 0.5x to 1.5x the typical scale; a negative typical value is Q4_1/Q5_1's
                    // minimum, stored with its sign.
                    let v = typical * (1.0 + 0.5 * rng.signed());
                    let sign = if v < 0.0 { 0x8000 } else { 0 };
                    block[at..at + 2].copy_from_slice(&(sign | f16_bits(v.abs())).to_le_bytes());
                }
            }
        }
    }
    Ok(())
}

/// Writes a whole GGUF: `prefix` (a real file's [`header_prefix`]) and synthetic tensor data of
/// the sizes and formats it names. Returns the bytes written.
pub fn synthesize(prefix: &[u8], seed: u64, out: &mut impl Write) -> Result<u64, String> {
    let header = GgufHeader::parse(prefix).map_err(|e| format!("header: {e}"))?;
    if header.data_offset() != prefix.len() as u64 {
        return Err(format!(
            "the header file holds {} bytes but the tensor data starts at {}: pass exactly the header prefix",
            prefix.len(),
            header.data_offset()
        ));
    }
    let io = |e: io::Error| e.to_string();
    out.write_all(prefix).map_err(io)?;
    let mut tensors: Vec<_> = header.tensors().iter().collect();
    tensors.sort_by_key(|t| t.offset);
    let mut rng = Rng(seed);
    let mut at = 0u64;
    let mut buf = Vec::new();
    for t in tensors {
        if t.offset < at {
            return Err(format!("tensor {} overlaps the one before it", t.name));
        }
        io::copy(&mut io::repeat(0).take(t.offset - at), out).map_err(io)?;
        buf.resize(usize::try_from(t.size_bytes).map_err(|e| e.to_string())?, 0);
        fill_tensor(&mut rng, &t.name, t.ggml_type, &mut buf)?;
        out.write_all(&buf).map_err(io)?;
        at = t.offset + t.size_bytes;
    }
    Ok(prefix.len() as u64 + at)
}

#[cfg(test)]
mod tests {
    use super::f16_bits;

    #[test]
    fn f16_bits_match_known_values() {
        assert_eq!(f16_bits(1.0), 0x3c00);
        assert_eq!(f16_bits(0.5), 0x3800);
        assert_eq!(f16_bits(0.0), 0);
        assert_eq!(f16_bits(0.000015), 252); // subnormal: 0.000015 / 2^-24 = 251.66
        assert_eq!(f16_bits(f32::powi(2.0, -24)), 1);
    }
}
