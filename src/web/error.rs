//! The one place where Rust errors become JS `Error` subclasses.
//!
//! Each core layer has its own error enum; here each maps to a class from
//! `errors.js`, a stable `code`, an actionable message and, where useful,
//! structured fields a UI can read without parsing the message.

use std::borrow::Cow;

use js_sys::{Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::backend::BackendError;

#[wasm_bindgen(module = "/src/web/errors.js")]
extern "C" {
    #[wasm_bindgen(js_name = makeError)]
    fn make_error(class_name: &str, code: &str, message: &str, details: &JsValue) -> JsValue;
}

/// The JS classes, by name. Mirrors `errors.js`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    InvalidInput,
    GpuUnavailable,
    Download,
    Cancelled,
    ModelFormat,
    ModelLoad,
    DeviceLost,
    OutOfMemory,
}

impl ErrorClass {
    fn js_name(self) -> &'static str {
        match self {
            ErrorClass::InvalidInput => "InvalidInputError",
            ErrorClass::GpuUnavailable => "GpuUnavailableError",
            ErrorClass::Download => "DownloadError",
            ErrorClass::Cancelled => "CancelledError",
            ErrorClass::ModelFormat => "ModelFormatError",
            ErrorClass::ModelLoad => "ModelLoadError",
            ErrorClass::DeviceLost => "DeviceLostError",
            ErrorClass::OutOfMemory => "OutOfMemoryError",
        }
    }
}

/// An error on its way to JS.
#[derive(Debug)]
pub struct JsError {
    class: ErrorClass,
    code: Cow<'static, str>,
    message: String,
    details: Vec<(&'static str, JsValue)>,
}

impl JsError {
    pub fn new(class: ErrorClass, code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        JsError { class, code: code.into(), message: message.into(), details: Vec::new() }
    }

    pub fn invalid_input(code: &'static str, message: impl Into<String>) -> Self {
        JsError::new(ErrorClass::InvalidInput, code, message)
    }

    pub fn with(mut self, key: &'static str, value: impl Into<JsValue>) -> Self {
        self.details.push((key, value.into()));
        self
    }

    pub fn class(&self) -> ErrorClass {
        self.class
    }

    pub fn class_name(&self) -> &'static str {
        self.class.js_name()
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<JsError> for JsValue {
    fn from(e: JsError) -> JsValue {
        let details = Object::new();
        for (key, value) in &e.details {
            // Setting a property on a fresh plain object cannot fail.
            let _ = Reflect::set(&details, &JsValue::from_str(key), value);
        }
        make_error(e.class.js_name(), &e.code, &e.message, &details)
    }
}

impl From<BackendError> for JsError {
    fn from(e: BackendError) -> JsError {
        let code = match e {
            BackendError::NoAdapter { .. } => "NO_ADAPTER",
            BackendError::Init { .. } => "DEVICE_INIT_FAILED",
            BackendError::Readback { .. } => "READBACK_FAILED",
        };
        JsError::new(ErrorClass::GpuUnavailable, code, e.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The model lifecycle's errors (`manager::ManagerError`), converted once for JS.

impl Clone for JsError {
    fn clone(&self) -> Self {
        JsError {
            class: self.class,
            code: self.code.clone(),
            message: self.message.clone(),
            details: self.details.clone(),
        }
    }
}

impl From<crate::manager::ManagerError<JsError>> for JsError {
    fn from(e: crate::manager::ManagerError<JsError>) -> JsError {
        use crate::manager::{LoadFailure, ManagerError};
        let suggestions = |s: &[crate::manager::Suggestion]| super::memory::to_js(&s).unwrap_or(JsValue::NULL);
        let message = e.message();
        match e {
            ManagerError::Catalog(c) => JsError::invalid_input(c.code(), c.to_string()),
            ManagerError::Busy { .. } => JsError::invalid_input("MODEL_BUSY", message),
            ManagerError::DoesNotFit { key, reason, required_bytes, available_bytes, suggestions: s, .. } => {
                JsError::new(ErrorClass::ModelLoad, "NOT_ENOUGH_MEMORY", message)
                    .with("modelKey", key)
                    .with("reason", reason)
                    .with("requiredBytes", required_bytes as f64)
                    .with("availableBytes", available_bytes as f64)
                    .with("suggestions", suggestions(&s))
            }
            ManagerError::Cancelled { key, .. } => {
                JsError::new(ErrorClass::Cancelled, "ABORTED", message).with("modelKey", key)
            }
            ManagerError::LoadFailed { key, failure, suggestions: s } => {
                let cause = match failure {
                    LoadFailure::Engine(cause) => cause,
                    LoadFailure::DeviceLost => JsError::new(ErrorClass::DeviceLost, "DEVICE_LOST", message),
                };
                cause.with("modelKey", key).with("suggestions", suggestions(&s))
            }
            ManagerError::Engine(cause) => cause,
        }
    }
}
