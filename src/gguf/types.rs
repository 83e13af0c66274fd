//! ggml tensor element types and their block geometry.
//!
//! Every quantised ggml type stores a row as a sequence of fixed-size blocks: `block_size`
//! elements packed into `type_size` bytes. Knowing both for every id is enough to compute a
//! tensor's exact byte size, even for formats this crate cannot decode, so the header parser can
//! validate offsets and the loader can plan downloads for any file.
//!
//! Ids and sizes follow `ggml_type` in llama.cpp's `ggml/include/ggml.h` and the `type_traits`
//! table in `ggml/src/ggml.c` (mirrored by `GGML_QUANT_SIZES` in gguf-py's `constants.py`).
//! Ids that ggml retired (4, 5: Q4_2/Q4_3; 31-33: Q4_0_4_4 and friends; 36-38: IQ4_NL_4_4 and
//! friends) have no block geometry any more, so llama.cpp rejects them and so do we.

use std::fmt;

/// Elements per block of the "k-quant" super-block formats (`QK_K` in ggml).
pub const QK_K: usize = 256;

/// A ggml tensor element type, as stored in a GGUF tensor info (`ggml_type`).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
    NVFP4,
    Q1_0,
}

/// One row of the geometry table: (type, id, name, elements per block, bytes per block).
type Row = (GgmlType, u32, &'static str, usize, usize);

/// The single source of truth for ids, names and block geometry.
const TABLE: [Row; 34] = {
    use GgmlType::*;
    [
        (F32, 0, "F32", 1, 4),
        (F16, 1, "F16", 1, 2),
        (Q4_0, 2, "Q4_0", 32, 2 + 16),
        (Q4_1, 3, "Q4_1", 32, 2 + 2 + 16),
        (Q5_0, 6, "Q5_0", 32, 2 + 4 + 16),
        (Q5_1, 7, "Q5_1", 32, 2 + 2 + 4 + 16),
        (Q8_0, 8, "Q8_0", 32, 2 + 32),
        (Q8_1, 9, "Q8_1", 32, 4 + 4 + 32),
        (Q2_K, 10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
        (Q3_K, 11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
        (Q4_K, 12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12),
        (Q5_K, 13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
        (Q6_K, 14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
        (Q8_K, 15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8),
        (IQ2_XXS, 16, "IQ2_XXS", QK_K, 2 + QK_K / 4),
        (IQ2_XS, 17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32),
        (IQ3_XXS, 18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8),
        (IQ1_S, 19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16),
        (IQ4_NL, 20, "IQ4_NL", 32, 2 + 16),
        (IQ3_S, 21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
        (IQ2_S, 22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16),
        (IQ4_XS, 23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
        (I8, 24, "I8", 1, 1),
        (I16, 25, "I16", 1, 2),
        (I32, 26, "I32", 1, 4),
        (I64, 27, "I64", 1, 8),
        (F64, 28, "F64", 1, 8),
        (IQ1_M, 29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
        (BF16, 30, "BF16", 1, 2),
        (TQ1_0, 34, "TQ1_0", QK_K, 2 + 4 * 13),
        (TQ2_0, 35, "TQ2_0", QK_K, 2 + 64),
        (MXFP4, 39, "MXFP4", 32, 1 + 16),
        (NVFP4, 40, "NVFP4", 64, 4 + 32),
        (Q1_0, 41, "Q1_0", 128, 2 + 16),
    ]
};

impl GgmlType {
    /// Every type this crate knows the geometry of, in id order.
    pub fn all() -> impl Iterator<Item = GgmlType> {
        TABLE.iter().map(|row| row.0)
    }

    fn row(self) -> &'static Row {
        // The table lists every variant exactly once (checked by a unit test), so the search
        // always succeeds; the fallback only keeps this function total.
        TABLE.iter().find(|row| row.0 == self).unwrap_or(&TABLE[0])
    }

    /// The type for a `ggml_type` id, or `None` for ids ggml never defined or has retired.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|row| row.1 == id).map(|row| row.0)
    }

    /// The `ggml_type` id stored in GGUF files.
    pub fn id(self) -> u32 {
        self.row().1
    }

    /// The name ggml and gguf-py use (`"Q4_K"`, `"BF16"`, ...).
    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Elements per block (`blck_size` in ggml); 1 for the plain scalar types.
    pub fn block_size(self) -> usize {
        self.row().3
    }

    /// Bytes per block (`type_size` in ggml).
    pub fn type_size(self) -> usize {
        self.row().4
    }

    /// Whether [`crate::gguf::dequantize`] can decode this type to f32.
    pub fn is_supported_for_decode(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q2_K | Q3_K | Q4_K | Q5_K | Q6_K)
    }

    /// Exact byte size of `n_elements` elements, or `None` when `n_elements` is not a whole
    /// number of blocks or the size overflows `u64`.
    pub fn byte_size(self, n_elements: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(self.type_size() as u64)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
