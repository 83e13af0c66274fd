//! [`ManagerError`]: why a switch, preload or unload of the [`ModelLifecycle`] failed.
//!
//! Typed variants with the figures a UI reads (no string to parse, no error name to compare);
//! the web layer converts them to its JS classes in one place. The engine's own failures are
//! wrapped as they are, with what the lifecycle adds (the model's key, the suggestions).
//!
//! [`ModelLifecycle`]: super::ModelLifecycle

use std::fmt;

use crate::error::{Detail, ErrorClass, ErrorCode};
use crate::status::ErrorInfo;

use super::catalog::{CatalogError, Suggestion};

/// What a lifecycle needs to know about an engine's error: its code (whose class says whether it
/// is a cancellation — the previous model stays current and a `CancelledError` is told instead —
/// or the caller's own mistake, where no fallback helps) and its message.
pub trait EngineError: Clone + fmt::Debug + 'static {
    /// The stable code; the class follows from it.
    fn code(&self) -> ErrorCode;
    /// The message for people.
    fn message(&self) -> String;

    /// What kind of failure it is, from its class.
    fn kind(&self) -> FailureKind {
        match self.code().class() {
            ErrorClass::Cancelled => FailureKind::Cancelled,
            ErrorClass::InvalidInput => FailureKind::InvalidInput,
            _ => FailureKind::Other,
        }
    }

    /// Whether the layer that failed already told it on the status stream (a generation's
    /// device fault: the session emits its `error` event), so a task failing with it adds none.
    fn told(&self) -> bool {
        false
    }

    /// The error as a status `error` event shows it: its class name, message and code.
    fn error_info(&self) -> ErrorInfo {
        ErrorInfo::of(self.code(), self.message())
    }
}

/// The kinds of engine failure the lifecycle treats differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The load was cancelled through its signal.
    Cancelled,
    /// The caller's input is wrong (e.g. a catalog entry without a source): a smaller model
    /// would not help, so no fallback is tried.
    InvalidInput,
    /// Anything else (download, format, out of memory, device).
    Other,
}

/// Why a load that had started failed.
#[derive(Debug, Clone)]
pub enum LoadFailure<E> {
    /// The engine failed (reading the header, downloading, uploading).
    Engine(E),
    /// The device was lost while the model was loading; what was uploaded went with it.
    DeviceLost,
}

/// Which operation found the model busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyWith {
    /// `unload` while the model is generating.
    Generating,
    /// Replacing a catalog entry while its model is being loaded.
    Loading,
}

/// Why an operation of the [`super::ModelLifecycle`] failed.
#[derive(Debug, Clone)]
pub enum ManagerError<E> {
    /// The key is not in the catalog, or a catalog entry is invalid (the field is named).
    Catalog(CatalogError),
    /// The model is busy: unloading it (generating) or replacing its entry (loading).
    Busy { key: String, with: BusyWith },
    /// The model does not fit, and eviction cannot (or may not) make room.
    DoesNotFit {
        key: String,
        /// "Not enough VRAM (available: …, required: …)" or the limit that bites.
        reason: String,
        required_bytes: u64,
        available_bytes: u64,
        /// Catalog models that fit now, best first.
        suggestions: Vec<Suggestion>,
        /// The sentence told on the status stream (with the suggestions, and the fallback).
        message: String,
    },
    /// The load was cancelled; the previous model (named in the message) stays current.
    Cancelled { key: String, message: String },
    /// A load failed after it started; nothing was registered and the previous model stays
    /// current.
    LoadFailed { key: String, failure: LoadFailure<E>, suggestions: Vec<Suggestion> },
    /// The engine failed outside a load (re-creating a lost device, reading a header to check).
    Engine(E),
    /// A task names no model, and no model is current.
    NoModel,
}

impl<E: EngineError> ManagerError<E> {
    /// The JS class of this error (it follows from the code).
    pub fn class(&self) -> ErrorClass {
        self.code().class()
    }

    /// The JS class name of this error, as the status stream shows it.
    pub fn class_name(&self) -> &'static str {
        self.class().js_name()
    }

    /// Whether the lifecycle told this failure on the status stream when it happened (a model
    /// that did not fit, a load that failed or was cancelled), so whoever passes it on (a task
    /// whose model could not be loaded) adds no second `error` event.
    pub fn told(&self) -> bool {
        matches!(
            self,
            ManagerError::DoesNotFit { .. } | ManagerError::LoadFailed { .. } | ManagerError::Cancelled { .. }
        )
    }

    /// The stable code a program branches on.
    pub fn code(&self) -> ErrorCode {
        match self {
            ManagerError::Catalog(e) => e.code(),
            ManagerError::Busy { .. } => ErrorCode::ModelBusy,
            ManagerError::DoesNotFit { .. } => ErrorCode::NotEnoughMemory,
            ManagerError::Cancelled { .. } => ErrorCode::Aborted,
            ManagerError::NoModel => ErrorCode::NoModel,
            ManagerError::LoadFailed { failure: LoadFailure::DeviceLost, .. } => ErrorCode::DeviceLost,
            ManagerError::LoadFailed { failure: LoadFailure::Engine(e), .. } | ManagerError::Engine(e) => e.code(),
        }
    }

    /// The message for people (a failed load's own message, without the "Failed to load" the
    /// status event adds).
    pub fn message(&self) -> String {
        match self {
            ManagerError::Catalog(e) => e.to_string(),
            ManagerError::Busy { key, with: BusyWith::Generating } => {
                format!("{key} is generating; cancel its task before unloading it.")
            }
            ManagerError::Busy { key, with: BusyWith::Loading } => {
                format!("registerModel: {key} is being loaded; wait for it before replacing its entry.")
            }
            ManagerError::DoesNotFit { message, .. } | ManagerError::Cancelled { message, .. } => message.clone(),
            ManagerError::LoadFailed { key, failure: LoadFailure::DeviceLost, .. } => {
                format!("The GPU device was lost while {key} was loading; load it again to use a new device.")
            }
            ManagerError::LoadFailed { failure: LoadFailure::Engine(e), .. } | ManagerError::Engine(e) => e.message(),
            ManagerError::NoModel => "enqueue: give `modelKey` (no model is current).".to_owned(),
        }
    }

    /// The fields an app reads beside the message (`error.<name>` in JS), besides
    /// [`Self::suggestions`]: the model, and the figures of a refusal.
    pub fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            ManagerError::DoesNotFit { key, reason, required_bytes, available_bytes, .. } => vec![
                ("modelKey", Detail::from(key.as_str())),
                ("reason", Detail::from(reason.as_str())),
                ("requiredBytes", Detail::from(*required_bytes)),
                ("availableBytes", Detail::from(*available_bytes)),
            ],
            ManagerError::Cancelled { key, .. } | ManagerError::LoadFailed { key, .. } => {
                vec![("modelKey", Detail::from(key.as_str()))]
            }
            _ => Vec::new(),
        }
    }

    /// The catalog models that fit, for the failures a smaller model could avoid.
    pub fn suggestions(&self) -> Option<&[Suggestion]> {
        match self {
            ManagerError::DoesNotFit { suggestions, .. } | ManagerError::LoadFailed { suggestions, .. } => {
                Some(suggestions)
            }
            _ => None,
        }
    }

    /// The engine's own error this one wraps (a failed load's cause keeps its code and fields).
    pub fn into_engine_error(self) -> Option<E> {
        match self {
            ManagerError::LoadFailed { failure: LoadFailure::Engine(e), .. } | ManagerError::Engine(e) => Some(e),
            _ => None,
        }
    }

    /// The status `error` event for this error: a failed load says "Failed to load <key>: …".
    pub fn error_info(&self) -> ErrorInfo {
        let message = match self {
            ManagerError::LoadFailed { key, .. } => format!("Failed to load {key}: {}", self.message()),
            _ => self.message(),
        };
        ErrorInfo::of(self.code(), message)
    }

    /// Whether the operation was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ManagerError::Cancelled { .. })
    }
}

impl<E: EngineError> fmt::Display for ManagerError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}
