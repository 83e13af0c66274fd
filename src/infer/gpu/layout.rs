//! How a GGUF weight is laid out on the device.
//!
//! GGUF blocks are not 4-byte aligned in general (Q4_0 is 18 bytes, Q8_0 34, Q6_K 210), and
//! WGSL reads storage in `u32` words. At upload each block is split losslessly into its `f16`
//! scale `d` (where the block has a lone one at an awkward offset) and the rest of its bytes (the
//! "payload", always a whole number of words). A weight part is then one `u32` array:
//!
//! ```text
//! [ d of block 0 | d of block 1 ] [ d of block 2 | ... ]   ceil(blocks / 2) words ("scales")
//! [ payload of block 0 ] [ payload of block 1 ] ...          blocks * payload_words words
//! ```
//!
//! Formats whose blocks are already word-aligned (Q4_1, Q4_K) and the plain F32/F16 keep their
//! GGUF bytes as they are. Either way the device holds at most two padding bytes more than the
//! GGUF data per part.

use burn::cubecl::server::Handle;

use crate::gguf::GgmlType;

/// A weight format the GPU kernels can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fmt {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q8_0,
    Q4K,
    Q6K,
}

impl Fmt {
    /// The kernel format for a GGUF type, `None` for one without a kernel.
    pub fn of(ty: GgmlType) -> Option<Fmt> {
        Some(match ty {
            GgmlType::F32 => Fmt::F32,
            GgmlType::F16 => Fmt::F16,
            GgmlType::Q4_0 => Fmt::Q4_0,
            GgmlType::Q4_1 => Fmt::Q4_1,
            GgmlType::Q5_0 => Fmt::Q5_0,
            GgmlType::Q8_0 => Fmt::Q8_0,
            GgmlType::Q4_K => Fmt::Q4K,
            GgmlType::Q6_K => Fmt::Q6K,
            _ => return None,
        })
    }

    /// Elements per GGUF block (1 for the plain types).
    pub fn block_elems(self) -> usize {
        match self {
            Fmt::F32 | Fmt::F16 => 1,
            Fmt::Q4_0 | Fmt::Q4_1 | Fmt::Q5_0 | Fmt::Q8_0 => 32,
            Fmt::Q4K | Fmt::Q6K => 256,
        }
    }

    /// Bytes per GGUF block.
    pub fn block_bytes(self) -> usize {
        match self {
            Fmt::F32 => 4,
            Fmt::F16 => 2,
            Fmt::Q4_0 => 18,
            Fmt::Q4_1 => 20,
            Fmt::Q5_0 => 22,
            Fmt::Q8_0 => 34,
            Fmt::Q4K => 144,
            Fmt::Q6K => 210,
        }
    }

    /// Where the block's lone `f16` scale sits, for the formats that move it to the scale array.
    fn split_scale_at(self) -> Option<usize> {
        match self {
            Fmt::Q4_0 | Fmt::Q5_0 | Fmt::Q8_0 => Some(0),
            Fmt::Q6K => Some(208),
            _ => None,
        }
    }

    /// Whether the part starts with a scale array (see the module docs).
    pub fn has_scale_array(self) -> bool {
        self.split_scale_at().is_some()
    }

    /// Words of payload per block (quantized formats only).
    pub fn payload_words(self) -> usize {
        let scale = if self.has_scale_array() { 2 } else { 0 };
        (self.block_bytes() - scale) / 4
    }

    /// Whether the kernels treat rows as raw element arrays (F32, F16).
    pub fn is_plain(self) -> bool {
        matches!(self, Fmt::F32 | Fmt::F16)
    }
}

/// One row range of a weight, re-laid out for the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartBytes {
    /// The device bytes (a whole number of words).
    pub bytes: Vec<u8>,
    /// Word offset of the first payload word (0 when there is no scale array).
    pub qoff: u32,
}

/// Device bytes of `rows` rows of `cols` columns in `fmt`, as [`relayout`] produces them.
pub fn part_bytes(fmt: Fmt, rows: usize, cols: usize) -> u64 {
    let blocks = (rows * cols / fmt.block_elems()) as u64;
    if fmt.is_plain() {
        return (blocks * fmt.block_bytes() as u64).next_multiple_of(4);
    }
    let scales = if fmt.has_scale_array() { blocks.div_ceil(2) * 4 } else { 0 };
    scales + blocks * 4 * fmt.payload_words() as u64
}

/// Re-lays out whole GGUF blocks `gguf` (a row range of a weight) for the device.
pub fn relayout(fmt: Fmt, gguf: &[u8]) -> PartBytes {
    let bb = fmt.block_bytes();
    debug_assert_eq!(gguf.len() % bb, 0);
    let Some(at) = fmt.split_scale_at() else {
        let mut bytes = gguf.to_vec();
        bytes.resize(gguf.len().next_multiple_of(4), 0);
        return PartBytes { bytes, qoff: 0 };
    };
    let blocks = gguf.len() / bb;
    let qoff = blocks.div_ceil(2);
    let mut bytes = Vec::with_capacity(qoff * 4 + blocks * (bb - 2));
    for block in gguf.chunks_exact(bb) {
        bytes.extend_from_slice(&block[at..at + 2]);
    }
    bytes.resize(qoff * 4, 0);
    for block in gguf.chunks_exact(bb) {
        bytes.extend_from_slice(&block[..at]);
        bytes.extend_from_slice(&block[at + 2..]);
    }
    PartBytes { bytes, qoff: qoff as u32 }
}

/// Splits `rows` rows into consecutive ranges whose device bytes each fit in `max_bytes`.
///
/// `None` when a single row does not fit.
pub fn split_rows(fmt: Fmt, rows: usize, cols: usize, max_bytes: u64) -> Option<Vec<(usize, usize)>> {
    if rows == 0 {
        return Some(Vec::new());
    }
    if part_bytes(fmt, rows, cols) <= max_bytes {
        return Some(vec![(0, rows)]);
    }
    // Bytes per row, plus the worst-case padding of one part, bound a part's size from above.
    let per_row = part_bytes(fmt, 1, cols).saturating_sub(4).max(1);
    let per_part = (max_bytes.saturating_sub(8) / per_row) as usize;
    if per_part == 0 || part_bytes(fmt, 1, cols) > max_bytes {
        return None;
    }
    let mut parts = Vec::new();
    let mut r0 = 0;
    while r0 < rows {
        let mut n = per_part.min(rows - r0);
        while n > 1 && part_bytes(fmt, n, cols) > max_bytes {
            n -= 1;
        }
        parts.push((r0, n));
        r0 += n;
    }
    Some(parts)
}

/// One row range of a weight, in its own buffer.
#[derive(Debug, Clone)]
pub(super) struct Part {
    pub(super) handle: Handle,
    pub(super) id: u64,
    pub(super) row0: u32,
    pub(super) rows: u32,
    pub(super) qoff: u32,
    pub(super) bytes: u64,
}

/// A quantized `rows x cols` matrix on the GPU, in one or more row-range parts.
#[derive(Debug, Clone)]
pub struct GpuWeight {
    pub(super) parts: Vec<Part>,
    pub(super) fmt: Fmt,
    pub(super) ty: GgmlType,
    pub(super) rows: usize,
    pub(super) cols: usize,
}

impl GpuWeight {
    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The GGUF format the weight came in.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// Buffers the weight is split into.
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Units (of 8 weights) per row, blocks per row, and whether rows end mid-unit.
    pub(super) fn geometry(&self) -> (u32, u32, bool) {
        let ragged = self.fmt.is_plain() && !self.cols.is_multiple_of(8);
        let upr = self.cols.div_ceil(8) as u32;
        let bpr = (self.cols / self.fmt.block_elems()) as u32;
        (upr, bpr, ragged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_moves_the_scale_to_the_front() {
        let mut block = vec![0u8; 34 * 3];
        for (i, b) in block.iter_mut().enumerate() {
            *b = i as u8;
        }
        let p = relayout(Fmt::Q8_0, &block);
        assert_eq!(p.qoff, 2);
        assert_eq!(&p.bytes[..6], &[0, 1, 34, 35, 68, 69]);
        assert_eq!(&p.bytes[8..8 + 32], &block[2..34]);
        assert_eq!(p.bytes.len() as u64, part_bytes(Fmt::Q8_0, 3, 32));
    }

    #[test]
    fn splits_fit_the_limit_and_cover_every_row() {
        for fmt in [Fmt::Q4_0, Fmt::Q8_0, Fmt::Q6K, Fmt::F16, Fmt::F32, Fmt::Q4K] {
            let cols = 512;
            let rows = 1001;
            let limit = part_bytes(fmt, 100, cols) + 3;
            let parts = split_rows(fmt, rows, cols, limit).unwrap();
            assert!(parts.len() >= 10);
            let mut next = 0;
            for &(r0, n) in &parts {
                assert_eq!(r0, next);
                assert!(part_bytes(fmt, n, cols) <= limit);
                next += n;
            }
            assert_eq!(next, rows);
        }
        assert_eq!(split_rows(Fmt::F32, 4, 100, 100), None);
    }
}
