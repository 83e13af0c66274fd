//! [`ModelError`]: everything that can be wrong with a model beyond the GGUF container, and the
//! caps on the counts a file's metadata may claim.

use std::fmt;

use crate::error::ErrorCode;
use crate::gguf::{GgmlType, GgufError};

/// Most transformer blocks a file may declare (Llama 3.1 405B has 126).
pub const MAX_LAYERS: u32 = 1024;
/// Widest residual stream (`embedding_length`; Llama 3.1 405B: 16384).
pub const MAX_EMBD: u32 = 1 << 16;
/// Widest feed-forward layer (`feed_forward_length`; Llama 3.1 405B: 53248).
pub const MAX_FF: u32 = 1 << 18;
/// Most query (or KV) heads (Llama 3.1 405B: 128).
pub const MAX_HEADS: u32 = 1024;
/// Widest attention head (`key_length`; Gemma 3: 256).
pub const MAX_HEAD_DIM: u32 = 1024;
/// Longest training context (`context_length`; Llama 4 Scout: 10M positions).
pub const MAX_CONTEXT: u32 = 1 << 24;
/// Largest vocabulary (rows of `token_embd.weight`; Gemma 3: 262144).
pub const MAX_VOCAB: u32 = 1 << 21;

/// Everything that can be wrong with a model beyond the GGUF container itself. Each variant
/// names the key or tensor at fault, the value found and what it disagrees with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// `general.architecture` names a family Hearth does not implement.
    UnsupportedArchitecture { arch: String, supported: &'static [&'static str] },
    /// A metadata key is missing or mistyped, or its integer does not fit (the error names the
    /// key).
    Metadata(GgufError),
    /// A tensor the architecture needs is not in the file.
    MissingTensor { name: String },
    /// A tensor's dimensions (ggml order, `ne[0]` first) are not what the hyperparameters imply.
    TensorShape { name: String, expected: Vec<u64>, found: Vec<u64> },
    /// A tensor is stored in a type no backend can compute with (the integer types, and
    /// quantisations without a decoder).
    UnsupportedTensorType { name: String, ty: GgmlType },
    /// A count outside `min..=max`: zero, or beyond the caps above (which are far beyond any
    /// published model), or beyond another count (RoPE dimensions beyond the head).
    OutOfRange { key: String, value: u64, min: u64, max: u64 },
    /// A count disagrees with the tensors in the file or with another key.
    CountMismatch {
        /// The metadata key (or tensor dimension) the count was read from.
        key: String,
        value: u64,
        /// What it disagrees with, in words: a tensor's dimension or another key.
        with: String,
        /// That other count.
        found: u64,
    },
    /// A count is not a multiple of another (`head_count` of `head_count_kv`).
    NotDivisible { key: String, value: u64, divisor: u64, divisor_from: String },
    /// A value that is not a number Hearth can compute with (a NaN or negative epsilon).
    InvalidValue { key: String, value: String, expected: &'static str },
    /// Hyperparameters that cannot be run for another reason (an unsupported RoPE scaling,
    /// RoPE frequency factors that are not positive).
    Inconsistent { what: String },
}

impl ModelError {
    /// A short, stable, machine-readable name for the variant (as [`GgufError::kind`]).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelError::UnsupportedArchitecture { .. } => "unsupported_architecture",
            ModelError::Metadata(_) => "metadata",
            ModelError::MissingTensor { .. } => "missing_tensor",
            ModelError::TensorShape { .. } => "tensor_shape",
            ModelError::UnsupportedTensorType { .. } => "unsupported_tensor_type",
            ModelError::OutOfRange { .. } => "out_of_range",
            ModelError::CountMismatch { .. } => "count_mismatch",
            ModelError::NotDivisible { .. } => "not_divisible",
            ModelError::InvalidValue { .. } => "invalid_value",
            ModelError::Inconsistent { .. } => "inconsistent",
        }
    }

    /// The `error.code` JS sees (class `ModelFormatError` for every variant).
    pub fn code(&self) -> ErrorCode {
        match self {
            ModelError::UnsupportedArchitecture { .. } => ErrorCode::UnsupportedArchitecture,
            ModelError::Metadata(_) => ErrorCode::Metadata,
            ModelError::MissingTensor { .. } => ErrorCode::MissingTensor,
            ModelError::TensorShape { .. } => ErrorCode::TensorShape,
            ModelError::UnsupportedTensorType { .. } => ErrorCode::UnsupportedTensorType,
            ModelError::OutOfRange { .. } => ErrorCode::MetadataOutOfRange,
            ModelError::CountMismatch { .. } => ErrorCode::CountMismatch,
            ModelError::NotDivisible { .. } => ErrorCode::NotDivisible,
            ModelError::InvalidValue { .. } => ErrorCode::InvalidMetadataValue,
            ModelError::Inconsistent { .. } => ErrorCode::Inconsistent,
        }
    }

    pub(crate) fn inconsistent(what: impl Into<String>) -> ModelError {
        ModelError::Inconsistent { what: what.into() }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::UnsupportedArchitecture { arch, supported } => {
                write!(f, "unsupported model architecture {arch:?}: Hearth supports {}", supported.join(", "))
            }
            ModelError::Metadata(e) => write!(f, "model metadata: {e}"),
            ModelError::MissingTensor { name } => write!(f, "the model has no tensor {name}"),
            ModelError::TensorShape { name, expected, found } => {
                write!(f, "tensor {name} has shape {found:?}, expected {expected:?} (ggml order, ne[0] first)")
            }
            ModelError::UnsupportedTensorType { name, ty } => {
                write!(f, "tensor {name} is stored as {ty}, which Hearth cannot compute with")
            }
            ModelError::OutOfRange { key, value, min, max } => {
                write!(f, "{key} is {value}, outside the supported range {min}..={max}")
            }
            ModelError::CountMismatch { key, value, with, found } => {
                write!(f, "{key} is {value}, which disagrees with {with}: {found}")
            }
            ModelError::NotDivisible { key, value, divisor, divisor_from } => {
                write!(f, "{key} {value} is not a multiple of {divisor} ({divisor_from})")
            }
            ModelError::InvalidValue { key, value, expected } => write!(f, "{key} is {value}; expected {expected}"),
            ModelError::Inconsistent { what } => write!(f, "inconsistent model: {what}"),
        }
    }
}

impl std::error::Error for ModelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ModelError::Metadata(e) => Some(e),
            _ => None,
        }
    }
}

impl From<GgufError> for ModelError {
    fn from(e: GgufError) -> Self {
        ModelError::Metadata(e)
    }
}

impl crate::error::Coded for ModelError {
    fn code(&self) -> ErrorCode {
        ModelError::code(self)
    }
}
