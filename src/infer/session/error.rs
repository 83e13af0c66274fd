//! Why a load or a generation failed ([`SessionError`]), and why a load onto a device failed
//! ([`ModelLoadError`]: the loader's error or the session's), each with the code, message and
//! fields an app sees ([`Coded`]).

use std::fmt;

use crate::backend::{GpuFault, GpuFaultKind};
use crate::error::{Coded, Detail, ErrorCode};
use crate::infer::{InferError, LoadError};
use crate::tokenizer::TokenizerError;

/// Why a load or a generation did not produce a result.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// The GPU ran out of memory uploading model `key` (`detail` is the device's message).
    OutOfMemory { key: String, detail: String },
    /// A buffer of model `key` would exceed a limit of the device (`message` names the buffer,
    /// its size and the limit).
    OverLimit { key: String, message: String },
    /// Another generation on this model is running.
    Busy,
    /// The model was disposed before the generation.
    Disposed,
    /// The model was disposed during the generation (which stopped, and the model is freed).
    DisposedDuring,
    /// Chat input for a model without a chat template Hearth knows.
    NoChatTemplate,
    /// The caller's cancellation stopped the generation; `text` is what came before, and the
    /// counts are the result's (`cached_tokens` of the prompt were served from the KV cache).
    Cancelled { text: String, prompt_tokens: u32, cached_tokens: u32, generated_tokens: u32 },
    /// The caller's cancellation stopped the load of model `key` (what was uploaded is freed).
    LoadCancelled { key: String },
    /// The tokenizer or the chat template refused the input.
    Tokenizer(TokenizerError),
    /// The model or the generation failed (settings, context overflow, device).
    Infer(InferError),
    /// The device reported an error no error scope caught while model `key` generated or
    /// loaded (its uncaptured-error handler recorded it instead of panicking).
    DeviceFault { key: String, fault: GpuFault },
    /// The device model `key` runs on was lost (`message` is the browser's); the model went
    /// with it.
    DeviceLost { key: String, message: String },
}

/// The session's own errors have codes of their own; the tokenizer's and the inference's keep
/// theirs (and their fields), and a cancelled generation carries the text before it.
impl Coded for SessionError {
    fn code(&self) -> ErrorCode {
        match self {
            SessionError::OutOfMemory { .. } => ErrorCode::OutOfMemory,
            SessionError::OverLimit { .. } => ErrorCode::ExceedsDeviceLimit,
            SessionError::Busy => ErrorCode::ModelBusy,
            SessionError::Disposed | SessionError::DisposedDuring => ErrorCode::ModelDisposed,
            SessionError::NoChatTemplate => ErrorCode::UnsupportedChatTemplate,
            SessionError::Cancelled { .. } | SessionError::LoadCancelled { .. } => ErrorCode::Aborted,
            SessionError::Tokenizer(e) => e.code(),
            SessionError::Infer(e) => e.code(),
            SessionError::DeviceLost { .. } => ErrorCode::DeviceLost,
            SessionError::DeviceFault { fault, .. } => match fault.kind {
                GpuFaultKind::OutOfMemory => ErrorCode::OutOfMemory,
                GpuFaultKind::Validation | GpuFaultKind::Internal => ErrorCode::GpuError,
            },
        }
    }

    fn message(&self) -> String {
        match self {
            SessionError::Tokenizer(e) => e.message(),
            SessionError::Infer(e) => e.message(),
            e => e.to_string(),
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            SessionError::Cancelled { text, prompt_tokens, cached_tokens, generated_tokens } => vec![
                ("text", Detail::from(text.as_str())),
                ("promptTokens", Detail::from(u64::from(*prompt_tokens))),
                ("cachedTokens", Detail::from(u64::from(*cached_tokens))),
                ("generatedTokens", Detail::from(u64::from(*generated_tokens))),
            ],
            SessionError::Tokenizer(e) => e.details(),
            SessionError::Infer(e) => e.details(),
            SessionError::DeviceFault { fault, .. } => vec![
                ("gpuErrorKind", Detail::from(fault.kind.as_str())),
                ("gpuMessage", Detail::from(fault.message.as_str())),
            ],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::OutOfMemory { key, detail } => write!(
                f,
                "The GPU ran out of memory loading {key} ({detail}); what was uploaded is freed. Unload a model, use a shorter contextLength, or pick a smaller model."
            ),
            SessionError::OverLimit { key, message } => {
                write!(f, "Cannot load {key}: {message}. Use a shorter contextLength or a smaller model.")
            }
            SessionError::Busy => f.write_str(
                "This model is already generating; await the previous generate() (or queue it with a TaskExecutor).",
            ),
            SessionError::Disposed => f.write_str("This model was disposed; load it again to generate."),
            SessionError::DisposedDuring => f.write_str("The model was disposed during the generation."),
            SessionError::NoChatTemplate => {
                f.write_str("This model has no chat template Hearth knows; pass a prompt string.")
            }
            SessionError::Cancelled { .. } => f.write_str("Generation was cancelled."),
            SessionError::LoadCancelled { key } => write!(f, "Loading {key} was cancelled."),
            SessionError::Tokenizer(e) => write!(f, "{e}"),
            SessionError::Infer(e) => write!(f, "{e}"),
            SessionError::DeviceLost { key, message } => write!(
                f,
                "The GPU device was lost while running {key} ({message}); the model went with it. Load it again (on a new device)."
            ),
            SessionError::DeviceFault { key, fault } => write!(
                f,
                "The GPU reported an error while running {key} ({fault}); that call failed. The model stays loaded; unload it or reload the page if the error repeats."
            ),
        }
    }
}

impl std::error::Error for SessionError {}

/// Why [`super::LoadedModel::load`] failed: the loader's error (the source's, the file's, the
/// compute's), or the session's own (a buffer over a device limit, out of memory, cancelled).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelLoadError<E> {
    Load(LoadError<E>),
    Session(SessionError),
}

impl<E> From<SessionError> for ModelLoadError<E> {
    fn from(e: SessionError) -> Self {
        ModelLoadError::Session(e)
    }
}

impl<E> From<InferError> for ModelLoadError<E> {
    fn from(e: InferError) -> Self {
        ModelLoadError::Load(LoadError::Model(e))
    }
}

impl<E: Coded> fmt::Display for ModelLoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// The loader's error or the session's, as each says it.
impl<E: Coded> Coded for ModelLoadError<E> {
    fn code(&self) -> ErrorCode {
        match self {
            ModelLoadError::Load(e) => e.code(),
            ModelLoadError::Session(e) => e.code(),
        }
    }

    fn message(&self) -> String {
        match self {
            ModelLoadError::Load(e) => e.message(),
            ModelLoadError::Session(e) => e.message(),
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            ModelLoadError::Load(e) => e.details(),
            ModelLoadError::Session(e) => e.details(),
        }
    }
}
