//! The one place where Rust errors become JS `Error` subclasses.
//!
//! Each core layer has its own error enum, which says its [`ErrorCode`] (whose [`ErrorClass`] is
//! the class from `errors.js`), an actionable message and, where useful, structured fields a UI
//! can read without parsing the message ([`Coded`]); here every one converts the same way. Web code
//! returns `Result<_, JsError>` and uses `?`; code that needs to know what failed matches on
//! [`JsError::error_code`] or [`JsError::class`], never on names.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::backend::BackendError;
use crate::cache::CacheError;
use crate::error::{Coded, Detail};
pub use crate::error::{ErrorClass, ErrorCode};
use crate::gguf::GgufError;
use crate::infer::InferError;
use crate::infer::load::LoadError;
use crate::infer::session::SessionError;
use crate::input::InputError;
use crate::manager::CatalogError;
use crate::memory::AccountError;
use crate::model::ModelError;
use crate::source::SourceError;
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

    /// A core error with its code, message and fields ([`Coded`]).
    pub fn coded(e: &impl Coded) -> Self {
        let details = e.details().into_iter().map(|(key, value)| match value {
            Detail::Text(text) => (key, JsValue::from(text)),
            Detail::Number(n) => (key, JsValue::from(n)),
        });
        JsError { code: e.code(), message: e.message(), details: details.collect() }
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

macro_rules! from_coded {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for JsError {
            fn from(e: $error) -> JsError {
                JsError::coded(&e)
            }
        }
    )*};
}

from_coded!(
    GgufError,
    ModelError,
    InferError,
    TokenizerError,
    CatalogError,
    EncodeError,
    SourceError,
    InputError,
    AccountError,
    BackendError,
    CacheError
);

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
