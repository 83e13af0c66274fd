//! The one place where Rust errors become JS `Error` subclasses.
//!
//! Each core layer has its own error enum, which says its [`ErrorCode`] (whose [`ErrorClass`] is
//! the class from `errors.js`), an actionable message and, where useful, structured fields a UI
//! can read without parsing the message ([`Coded`]); here every one converts the same way, and the
//! lifecycle's errors add their fields to their cause's. Web code returns `Result<_, JsError>` and
//! uses `?`; code that needs to know what failed matches on [`JsError::code`], never on names.

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::backend::BackendError;
use crate::cache::CacheError;
use crate::error::{Coded, Detail};
pub use crate::error::{ErrorClass, ErrorCode};
use crate::gguf::GgufError;
use crate::infer::InferError;
use crate::infer::load::LoadError;
use crate::infer::session::{ModelLoadError, SessionError};
use crate::input::InputError;
use crate::manager::task::TaskFailure;
use crate::manager::{CatalogError, ManagerError};
use crate::memory::AccountError;
use crate::model::ModelError;
use crate::source::SourceError;
use crate::status::sse::EncodeError;
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
    /// Already told on the status stream by the layer that failed (`EngineError::told`).
    told: bool,
}

impl JsError {
    /// An error with `code`; its class follows from the code.
    pub fn of(code: ErrorCode, message: impl Into<String>) -> Self {
        JsError { code, message: message.into(), details: Vec::new(), told: false }
    }

    /// Adds a structured field (`error.<key>` in JS).
    pub fn with(mut self, key: &'static str, value: impl Into<JsValue>) -> Self {
        self.details.push((key, value.into()));
        self
    }

    /// The stable code (`error.code` in JS is its string).
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the layer that failed already told it on the status stream.
    pub fn told(&self) -> bool {
        self.told
    }

    /// A core error with its code, message and fields ([`Coded`]).
    pub fn coded(e: &impl Coded) -> Self {
        let details = e.details().into_iter().map(|(key, value)| (key, js_detail(value)));
        JsError { code: e.code(), message: e.message(), details: details.collect(), told: false }
    }
}

impl From<JsError> for JsValue {
    fn from(e: JsError) -> JsValue {
        let details = Object::new();
        for (key, value) in &e.details {
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&details, &JsValue::from_str(key), value);
        }
        make_error(e.code.class().js_name(), e.code.as_str(), &e.message, &details)
    }
}

fn js_detail(value: Detail) -> JsValue {
    match value {
        Detail::Text(text) => JsValue::from(text),
        Detail::Number(n) => JsValue::from(n),
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
    CacheError,
    TaskFailure,
    LoadError<SourceError>,
    ModelLoadError<SourceError>,
);

/// A generation's device fault was told on the status stream by the session itself.
impl From<SessionError> for JsError {
    fn from(e: SessionError) -> JsError {
        let told = matches!(e, SessionError::DeviceFault { .. });
        JsError { told, ..JsError::coded(&e) }
    }
}

/// The model lifecycle's errors: the engine's own error (a failed load's cause) keeps its code
/// and fields, the lifecycle adds its own (`modelKey`, a refusal's figures, `suggestions`).
impl From<ManagerError<JsError>> for JsError {
    fn from(e: ManagerError<JsError>) -> JsError {
        let suggestions = e.suggestions().map(|s| super::convert::to_js(&s).unwrap_or(JsValue::NULL));
        let (code, message, details, told) = (e.code(), e.message(), e.details(), e.told());
        let base = match e {
            ManagerError::Catalog(c) => return c.into(),
            e => e.into_engine_error().unwrap_or_else(|| JsError::of(code, message)),
        };
        let error = details.into_iter().fold(base, |error, (key, value)| error.with(key, js_detail(value)));
        let error = JsError { told: told || error.told, ..error };
        match suggestions {
            Some(s) => error.with("suggestions", s),
            None => error,
        }
    }
}
