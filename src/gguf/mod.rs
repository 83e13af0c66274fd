//! Reading GGUF files: the header, tensor byte ranges, and decoding tensor data to f32.
//!
//! GGUF is llama.cpp's single-file model format: a header of key/value metadata and tensor
//! descriptions, followed by the raw (usually block-quantised) tensor data. Reading happens in
//! two phases, so that the browser can fetch the header with one HTTP Range request and then
//! stream each tensor knowing its exact size:
//!
//! 1. [`GgufHeader::parse`] (a prefix of unknown length), [`GgufHeader::parse_with_len`] or
//!    [`GgufHeader::parse_complete`] validates the whole header: every count and length is capped,
//!    every tensor's byte size is computed from its type's block geometry, and tensor ranges are
//!    checked for alignment, overlap and (when the file length is known) bounds. A prefix that
//!    stops inside the header gives [`GgufError::NeedMoreBytes`], distinct from
//!    [`GgufError::Truncated`] for a complete file that is too short.
//! 2. [`GgufHeader::tensor_range`] gives each tensor's absolute byte range and
//!    [`GgufHeader::tensor_bytes`] / [`GgufHeader::tensor_bytes_at`] slice it out of the bytes;
//!    [`dequantize`] decodes them to f32, bit-identical to gguf-py 0.19's
//!    `gguf.quants.dequantize`.
//!
//! This module is plain `std` Rust with no dependencies, so it builds for wasm32 and natively.
//!
//! Not supported: GGUF v1, big-endian files, and decoding the IQ*/TQ*/MXFP4 families (their
//! sizes are known, so such files still parse; [`GgmlType::is_supported_for_decode`] says which
//! types decode).
//!
//! ```
//! # use hearth::gguf::{GgufHeader, GgufError};
//! # fn fetch(_n: u64) -> Vec<u8> { Vec::new() }
//! let mut want = 1 << 20;
//! let header = loop {
//!     let prefix = fetch(want);
//!     match GgufHeader::parse(&prefix) {
//!         Err(GgufError::NeedMoreBytes { needed_at_least }) if (prefix.len() as u64) >= want => {
//!             want = needed_at_least.max(2 * want);
//!         }
//!         other => break other,
//!     }
//! };
//! assert!(header.is_err()); // `fetch` here returns nothing
//! ```

#[doc(hidden)]
pub mod corpus;
mod dequant;
mod error;
mod header;
mod metadata;
mod types;

pub use dequant::{bf16_to_f32, dequantize, dequantize_to_vec, f16_to_f32};
pub use error::{GgufError, Result};
pub use header::{
    ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC, GgufHeader, MAX_ARRAY_DEPTH, MAX_ARRAY_LEN, MAX_DIMS, MAX_KV,
    MAX_NAME_LEN, MAX_STRING_LEN, MAX_TENSORS, TensorInfo, TensorSummary,
};
pub use metadata::{Metadata, MetadataArray, MetadataValue};
pub use types::{GgmlType, QK_K};

#[cfg(test)]
mod tests;
