//! Inference: the transformer forward pass for every supported architecture, written once against
//! [`Compute`], a CPU backend and a GPU backend for it, and generation (sampling, stopping,
//! streaming).
//!
//! - [`compute`] — the op set a forward pass needs; the contract both backends meet.
//! - [`cpu`] — plain Rust over the GGUF blocks: native tests, and the browser's fallback.
//! - [`gpu`] — WGSL kernels over quantized blocks, launched through burn's cubecl runtime.
//! - [`transformer`] — weights by name from a GGUF, the KV cache, and the forward pass.
//! - [`load`] — the one loader: header, then tensors from any [`ByteSource`] in pieces, with
//!   progress and cancellation.
//! - [`sampler`] — greedy, temperature, top-k/top-p/min-p, repetition penalty, seeds.
//! - [`generate`] — prefill, decode, stop conditions, streamed tokens.

use std::fmt;

use crate::error::{Coded, Detail, ErrorCode};
use crate::gguf::{GgmlType, GgufError};
use crate::model::ModelError;

pub mod compute;
pub mod cpu;
pub mod generate;
pub mod gpu;
pub mod load;
pub mod sampler;
pub mod session;
pub mod transformer;

pub use compute::{Activation, Attention, Compute, HeadNorms, KvCache, Rope};
pub use cpu::{Cpu, CpuOptions};
pub use generate::{GenerateParams, Generation, StopReason, Timings, TokenEvent, generate};
pub use load::{
    ByteSource, FileSource, LoadError, LoadEvents, MAX_DEQUANTIZE_ELEMENTS, dequantize_tensor, load_model,
    load_weights, load_weights_from, read_header, read_header_from, read_tensor,
};
pub use sampler::SamplerParams;
pub use transformer::{BufferPlan, Model, Shape, Weights, WeightsBuilder, allocated_bytes};

/// Everything that can go wrong between a parsed GGUF and generated tokens.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InferError {
    /// The file is not a model Hearth can run (architecture, missing or misshapen tensors).
    Model(ModelError),
    /// The GGUF container is broken.
    Gguf(GgufError),
    /// A weight is stored in a format the backend has no kernel for.
    UnsupportedType { tensor: String, ty: GgmlType },
    /// The device refused an allocation or a launch; the message is the device's.
    Device(String),
    /// A weight's bytes do not match its shape and type (a broken file, or a caller bug).
    BadWeight { tensor: String, detail: String },
    /// The prompt plus the requested tokens do not fit the context the model was loaded with.
    ContextOverflow { needed: usize, context: usize },
    /// A token id outside the vocabulary.
    BadToken { id: u32, n_vocab: u32 },
    /// Generation was cancelled by the caller.
    Cancelled,
    /// A model feature Hearth does not implement; the message names it.
    Unsupported(String),
    /// An input out of range: a generation setting, an empty prompt, a candidate count.
    /// `field` names it (`temperature`, `topP`, `prompt`, `k`, ...).
    InvalidInput { field: &'static str, message: String },
    /// A tensor with more elements than can be decoded to f32 at once ([`MAX_DEQUANTIZE_ELEMENTS`]).
    TooManyElements { tensor: String, elements: u64 },
}

impl InferError {
    /// An [`InferError::InvalidInput`] for `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> InferError {
        InferError::InvalidInput { field, message: message.into() }
    }
}

impl fmt::Display for InferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InferError::Model(e) => write!(f, "{e}"),
            InferError::Gguf(e) => write!(f, "{e}"),
            InferError::UnsupportedType { tensor, ty } => write!(
                f,
                "tensor {tensor} is stored as {}, which Hearth cannot compute with (supported: F32, F16, Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q6_K)",
                ty.name()
            ),
            InferError::Device(m) => write!(f, "the compute device failed: {m}"),
            InferError::BadWeight { tensor, detail } => write!(f, "tensor {tensor}: {detail}"),
            InferError::ContextOverflow { needed, context } => write!(
                f,
                "the prompt and the requested tokens need {needed} positions but the model was loaded with a context of {context}; shorten the prompt, lower maxTokens, or load with a larger context"
            ),
            InferError::BadToken { id, n_vocab } => {
                write!(f, "token id {id} is outside the vocabulary (n_vocab = {n_vocab})")
            }
            InferError::Cancelled => f.write_str("generation was cancelled"),
            InferError::Unsupported(m) => write!(f, "this model uses {m}"),
            InferError::InvalidInput { field, message } => write!(f, "invalid {field}: {message}"),
            InferError::TooManyElements { tensor, elements } => write!(
                f,
                "{tensor} has {elements} elements; dequantize() decodes at most {MAX_DEQUANTIZE_ELEMENTS} (1 GiB of f32) at once."
            ),
        }
    }
}

impl std::error::Error for InferError {}

/// The model's and the container's errors keep their own codes; the rest are coded here, with
/// the fields a UI needs (`tensor`, `needed`/`contextLength`, `field`).
impl Coded for InferError {
    fn code(&self) -> ErrorCode {
        match self {
            InferError::Model(e) => e.code(),
            InferError::Gguf(e) => Coded::code(e),
            InferError::UnsupportedType { .. } => ErrorCode::UnsupportedTensorType,
            InferError::BadWeight { .. } => ErrorCode::BadWeight,
            InferError::Device(_) => ErrorCode::Device,
            InferError::ContextOverflow { .. } => ErrorCode::ContextOverflow,
            InferError::BadToken { .. } => ErrorCode::BadToken,
            InferError::Cancelled => ErrorCode::Cancelled,
            InferError::InvalidInput { .. } => ErrorCode::InvalidParams,
            InferError::Unsupported(_) => ErrorCode::Unsupported,
            InferError::TooManyElements { .. } => ErrorCode::TensorTooLarge,
        }
    }

    fn message(&self) -> String {
        match self {
            InferError::Gguf(e) => Coded::message(e),
            other => other.to_string(),
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            InferError::BadWeight { tensor, .. } => vec![("tensor", tensor.as_str().into())],
            InferError::ContextOverflow { needed, context } => {
                vec![("needed", (*needed as u64).into()), ("contextLength", (*context as u64).into())]
            }
            InferError::InvalidInput { field, .. } => vec![("field", (*field).into())],
            _ => Vec::new(),
        }
    }
}

impl From<ModelError> for InferError {
    fn from(e: ModelError) -> Self {
        InferError::Model(e)
    }
}

impl From<GgufError> for InferError {
    fn from(e: GgufError) -> Self {
        InferError::Gguf(e)
    }
}
