//! The one place where Rust errors become JS `Error` subclasses.
//!
//! Each core layer has its own error enum; here each converts (`impl From<XError> for JsError`)
//! to an [`ErrorCode`], whose [`ErrorClass`] is the class from `errors.js`, an actionable message
//! and, where useful, structured fields a UI can read without parsing the message. Web code
//! returns `Result<_, JsError>` and uses `?`; code that needs to know what failed matches on
//! [`JsError::error_code`] or [`JsError::class`], never on names.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use super::source::SourceError;
use crate::backend::BackendError;
pub use crate::error::{ErrorClass, ErrorCode};
use crate::gguf::GgufError;
use crate::infer::InferError;
use crate::infer::load::LoadError;
use crate::infer::session::SessionError;
use crate::input::InputError;
use crate::manager::CatalogError;
use crate::memory::AccountError;
use crate::model::ModelError;
use crate::status::{ErrorInfo, sse::EncodeError};
use crate::tokenizer::TokenizerError;

#[wasm_bindgen(module = "/src/web/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(class_name: &str, code: &str, message: &str, details: &JsValue) -> JsValue;
}

/// An error on its way to JS.
#[derive(Debug, Clone)]
pub struct JsError {
    code: ErrorCode,
    message: String,
    details: Vec<(&'static str, JsValue)>,
}

impl JsError {
    /// An error with `code`; its class follows from the code.
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        JsError { code, message: message.into(), details: Vec::new() }
    }

    /// Adds a structured field (`error.<key>` in JS).
    pub fn with(mut self, key: &'static str, value: impl Into<JsValue>) -> Self {
        self.details.push((key, value.into()));
        self
    }

    pub fn class(&self) -> ErrorClass {
        self.code.class()
    }

    pub fn class_name(&self) -> &'static str {
        self.class().js_name()
    }

    /// The stable code (`error.code` in JS is its string).
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error as an `error` event on the status stream describes it.
    pub fn info(&self) -> ErrorInfo {
        ErrorInfo::of(self.code, self.message.clone())
    }
}

impl From<JsError> for JsValue {
    fn from(e: JsError) -> JsValue {
        let details = Object::new();
        for (key, value) in &e.details {
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&details, &JsValue::from_str(key), value);
        }
        make_error(e.class_name(), e.code().as_str(), &e.message, &details)
    }
}

/// A GGUF problem as the `ModelFormatError` users see: the reader's message names the field or
/// tensor; the code is `GGUF_` and the variant (`GGUF_BAD_MAGIC`).
impl From<GgufError> for JsError {
    fn from(e: GgufError) -> JsError {
        JsError::of(ErrorCode::Gguf(e.code()), format!("Not a valid GGUF model file: {e}."))
    }
}

impl From<ModelError> for JsError {
    fn from(e: ModelError) -> JsError {
        // The code table is the core's (`ModelError::code`), tested natively.
        JsError::of(e.code(), e.to_string())
    }
}

impl From<InferError> for JsError {
    fn from(e: InferError) -> JsError {
        let message = e.to_string();
        match e {
            InferError::Model(e) => e.into(),
            InferError::Gguf(e) => e.into(),
            InferError::UnsupportedType { .. } => JsError::of(ErrorCode::UnsupportedTensorType, message),
            InferError::BadWeight { tensor, .. } => JsError::of(ErrorCode::BadWeight, message).with("tensor", tensor),
            InferError::Device(_) => JsError::of(ErrorCode::Device, message),
            InferError::ContextOverflow { needed, context } => JsError::of(ErrorCode::ContextOverflow, message)
                .with("needed", needed as f64)
                .with("contextLength", context as f64),
            InferError::BadToken { .. } => JsError::of(ErrorCode::BadToken, message),
            InferError::Cancelled => JsError::of(ErrorCode::Cancelled, message),
            InferError::InvalidInput { field, .. } => {
                JsError::of(ErrorCode::InvalidParams, message).with("field", field)
            }
            InferError::Unsupported(_) => JsError::of(ErrorCode::Unsupported, message),
        }
    }
}

impl From<TokenizerError> for JsError {
    fn from(e: TokenizerError) -> JsError {
        let code = match &e {
            TokenizerError::UnknownRole { .. } => ErrorCode::InvalidMessages,
            TokenizerError::UnknownChatTemplate { .. } | TokenizerError::UnsupportedChatTemplate { .. } => {
                ErrorCode::UnsupportedChatTemplate
            }
            _ => ErrorCode::Tokenizer,
        };
        JsError::of(code, e.to_string())
    }
}

// A loaded model's errors (`infer::session`): the inference's and the tokenizer's keep their
// codes and fields; a cancelled generation carries the text before it.
impl From<SessionError> for JsError {
    fn from(e: SessionError) -> JsError {
        match e {
            SessionError::Infer(e) => e.into(),
            SessionError::Tokenizer(e) => e.into(),
            SessionError::Cancelled { text } => {
                JsError::of(ErrorCode::Aborted, "Generation was cancelled.").with("text", text)
            }
            // Every other variant has a code of its own (the two without are converted above).
            e => JsError::of(e.code().unwrap_or(ErrorCode::Device), e.to_string()),
        }
    }
}

impl From<CatalogError> for JsError {
    fn from(e: CatalogError) -> JsError {
        JsError::of(e.code(), e.to_string())
    }
}

impl From<EncodeError> for JsError {
    fn from(e: EncodeError) -> JsError {
        JsError::of(ErrorCode::InvalidSseFrame, format!("{e}."))
    }
}

impl From<SourceError> for JsError {
    fn from(e: SourceError) -> JsError {
        let message = e.to_string();
        match e {
            SourceError::Http { url, status, .. } => {
                JsError::of(ErrorCode::HttpStatus, message).with("url", url).with("status", status)
            }
            SourceError::Network { url, .. } => {
                JsError::of(ErrorCode::NetworkError, message).with("url", url).with("status", 0)
            }
            SourceError::Truncated { url, expected, received } => JsError::of(ErrorCode::TruncatedBody, message)
                .with("url", url)
                .with("expectedBytes", expected as f64)
                .with("receivedBytes", received as f64),
            SourceError::Aborted { url } => JsError::of(ErrorCode::Aborted, message).with("url", url),
            SourceError::Read { .. } => JsError::of(ErrorCode::ReadFailed, message),
        }
    }
}

/// A failed load or header read: the source's own error, a `ModelFormatError`, the model's
/// error, or a `CancelledError`.
impl<E: Into<JsError>> From<LoadError<E>> for JsError {
    fn from(e: LoadError<E>) -> JsError {
        match e {
            LoadError::Source(e) => e.into(),
            LoadError::Format(e) => e.into(),
            LoadError::Model(e) => e.into(),
            LoadError::Cancelled => JsError::of(ErrorCode::Aborted, "The operation was cancelled."),
        }
    }
}

impl From<InputError> for JsError {
    fn from(e: InputError) -> JsError {
        JsError::of(e.kind.code(), e.message)
    }
}

impl From<AccountError> for JsError {
    fn from(e: AccountError) -> JsError {
        match e {
            AccountError::Init(m) => JsError::of(ErrorCode::DeviceInitFailed, m),
            AccountError::Read(m) => JsError::of(ErrorCode::DeviceReadFailed, m),
        }
    }
}

impl From<BackendError> for JsError {
    fn from(e: BackendError) -> JsError {
        let code = match e {
            BackendError::NoAdapter { .. } => ErrorCode::NoAdapter,
            BackendError::Init { .. } => ErrorCode::DeviceInitFailed,
            BackendError::Readback { .. } => ErrorCode::ReadbackFailed,
        };
        JsError::of(code, e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The model lifecycle's errors (`manager::ManagerError`), converted once for JS.

impl From<crate::manager::ManagerError<JsError>> for JsError {
    fn from(e: crate::manager::ManagerError<JsError>) -> JsError {
        use crate::manager::{LoadFailure, ManagerError};
        let suggestions = |s: &[crate::manager::Suggestion]| super::memory::to_js(&s).unwrap_or(JsValue::NULL);
        let message = e.message();
        match e {
            ManagerError::Catalog(c) => c.into(),
            ManagerError::Busy { .. } => JsError::of(ErrorCode::ModelBusy, message),
            ManagerError::DoesNotFit { key, reason, required_bytes, available_bytes, suggestions: s, .. } => {
                JsError::of(ErrorCode::NotEnoughMemory, message)
                    .with("modelKey", key)
                    .with("reason", reason)
                    .with("requiredBytes", required_bytes as f64)
                    .with("availableBytes", available_bytes as f64)
                    .with("suggestions", suggestions(&s))
            }
            ManagerError::Cancelled { key, .. } => JsError::of(ErrorCode::Aborted, message).with("modelKey", key),
            ManagerError::LoadFailed { key, failure, suggestions: s } => {
                let cause = match failure {
                    LoadFailure::Engine(cause) => cause,
                    LoadFailure::DeviceLost => JsError::of(ErrorCode::DeviceLost, message),
                };
                cause.with("modelKey", key).with("suggestions", suggestions(&s))
            }
            ManagerError::Engine(cause) => cause,
        }
    }
}
