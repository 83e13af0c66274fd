//! The error vocabulary an app sees: the class of every failure Hearth reports and its stable
//! code.
//!
//! Every error that reaches JS is one of the [`ErrorClass`]es (an `Error` subclass in
//! `web/errors.js`) with one [`ErrorCode`] (`error.code`); the class follows from the code. The
//! same pair names errors on the status stream ([`crate::status::ErrorInfo`]). Each core error
//! enum (one per layer) says its own code, message and structured fields through [`Coded`]; the
//! web layer's `error.rs` turns any of them into a JS error the same way. This module is plain
//! Rust so that the vocabulary is tested natively.

use std::fmt;

/// The JS `Error` subclasses, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// A caller passed something Hearth cannot use (wrong type, out of range).
    InvalidInput,
    /// No WebGPU adapter or device could be had.
    GpuUnavailable,
    /// A model file could not be fetched.
    Download,
    /// The operation was cancelled through its `AbortSignal` or `cancel()`.
    Cancelled,
    /// A model file is malformed or unsupported.
    ModelFormat,
    /// A model could not be loaded (memory, device).
    ModelLoad,
    /// The GPU device was lost.
    DeviceLost,
    /// The GPU has no room for what was asked.
    OutOfMemory,
    /// A model file's bytes are not the ones its digest names (a corrupted or truncated cached
    /// file, or a download that differs from the catalog's `sha256`).
    Integrity,
    /// The GPU reported an error outside any load (a validation or internal error); the work
    /// that hit it failed, the module and the other models keep working.
    Gpu,
    /// Worker mode could not start its Worker (the page side of the package raises it).
    Worker,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::InvalidInput,
        ErrorClass::GpuUnavailable,
        ErrorClass::Download,
        ErrorClass::Cancelled,
        ErrorClass::ModelFormat,
        ErrorClass::ModelLoad,
        ErrorClass::DeviceLost,
        ErrorClass::OutOfMemory,
        ErrorClass::Integrity,
        ErrorClass::Gpu,
        ErrorClass::Worker,
    ];

    /// The class's JS name (`error.name`).
    pub fn js_name(self) -> &'static str {
        match self {
            ErrorClass::InvalidInput => "InvalidInputError",
            ErrorClass::GpuUnavailable => "GpuUnavailableError",
            ErrorClass::Download => "DownloadError",
            ErrorClass::Cancelled => "CancelledError",
            ErrorClass::ModelFormat => "ModelFormatError",
            ErrorClass::ModelLoad => "ModelLoadError",
            ErrorClass::DeviceLost => "DeviceLostError",
            ErrorClass::OutOfMemory => "OutOfMemoryError",
            ErrorClass::Integrity => "IntegrityError",
            ErrorClass::Gpu => "GpuError",
            ErrorClass::Worker => "WorkerError",
        }
    }
}

/// Declares [`ErrorCode`]'s unit variants once: each with its JS string and its class.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal => $class:ident,)*) => {
        /// A stable, machine-readable `error.code`. The strings never change once published;
        /// [`ErrorCode::class`] is the JS class an error with this code has.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
            /// A GGUF reader error: `GGUF_` and the reader's variant (`GGUF_BAD_MAGIC`), as
            /// [`crate::gguf::GgufError::code`] gives it.
            Gguf(&'static str),
        }

        impl ErrorCode {
            /// Every code but the GGUF reader's.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as JS sees it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)*
                    ErrorCode::Gguf(code) => code,
                }
            }

            /// The JS class of an error with this code.
            pub fn class(self) -> ErrorClass {
                match self {
                    $(ErrorCode::$variant => ErrorClass::$class,)*
                    ErrorCode::Gguf(_) => ErrorClass::ModelFormat,
                }
            }
        }
    };
}

codes! {
    // InvalidInputError: the caller's input.
    InvalidArgument = "INVALID_ARGUMENT" => InvalidInput,
    InvalidOptions = "INVALID_OPTIONS" => InvalidInput,
    InvalidEventData = "INVALID_EVENT_DATA" => InvalidInput,
    InvalidSseFrame = "INVALID_SSE_FRAME" => InvalidInput,
    InvalidListener = "INVALID_LISTENER" => InvalidInput,
    UnknownEventType = "UNKNOWN_EVENT_TYPE" => InvalidInput,
    InvalidPrompt = "INVALID_PROMPT" => InvalidInput,
    InvalidMessages = "INVALID_MESSAGES" => InvalidInput,
    /// Generation settings or inputs out of range (the message names the field).
    InvalidParams = "INVALID_PARAMS" => InvalidInput,
    InvalidTokenId = "INVALID_TOKEN_ID" => InvalidInput,
    /// The prompt plus the requested tokens do not fit the loaded context.
    ContextOverflow = "CONTEXT_OVERFLOW" => InvalidInput,
    BadToken = "BAD_TOKEN" => InvalidInput,
    ModelBusy = "MODEL_BUSY" => InvalidInput,
    /// A tensor too large to decode into one `Float32Array` in wasm memory.
    TensorTooLarge = "TENSOR_TOO_LARGE" => InvalidInput,
    /// `generate` on a model after its `dispose()`.
    ModelDisposed = "MODEL_DISPOSED" => InvalidInput,
    NoModel = "NO_MODEL" => InvalidInput,
    NoModelSource = "NO_MODEL_SOURCE" => InvalidInput,
    InvalidCatalog = "INVALID_CATALOG" => InvalidInput,
    InvalidCatalogEntry = "INVALID_CATALOG_ENTRY" => InvalidInput,
    UnknownModel = "UNKNOWN_MODEL" => InvalidInput,
    /// A result could not be converted into a JS value.
    Serialize = "SERIALIZE" => InvalidInput,
    /// A status event could not be converted into a JS value.
    Unserialisable = "UNSERIALISABLE" => InvalidInput,
    NoEventTarget = "NO_EVENT_TARGET" => InvalidInput,
    NoReadableStream = "NO_READABLE_STREAM" => InvalidInput,
    NoAbort = "NO_ABORT" => InvalidInput,
    /// An `eventStream()` reader fell too far behind and was disconnected.
    StreamBacklog = "STREAM_BACKLOG" => InvalidInput,
    // GpuUnavailableError
    NoAdapter = "NO_ADAPTER" => GpuUnavailable,
    DeviceInitFailed = "DEVICE_INIT_FAILED" => GpuUnavailable,
    ReadbackFailed = "READBACK_FAILED" => GpuUnavailable,
    // DownloadError
    HttpStatus = "HTTP_STATUS" => Download,
    /// Offline or refused by CORS (browsers do not say which).
    NetworkError = "NETWORK_ERROR" => Download,
    TruncatedBody = "TRUNCATED_BODY" => Download,
    ReadFailed = "READ_FAILED" => Download,
    CacheWriteFailed = "CACHE_WRITE_FAILED" => Download,
    /// The browser's storage has no room for a model file (checked before downloading; a write
    /// refused midway keeps nothing either).
    StorageQuota = "STORAGE_QUOTA" => Download,
    // CancelledError
    /// Cancelled through an `AbortSignal` or `cancel()`.
    Aborted = "ABORTED" => Cancelled,
    /// Cancelled from inside the generation loop.
    Cancelled = "CANCELLED" => Cancelled,
    // ModelFormatError
    UnsupportedArchitecture = "UNSUPPORTED_ARCHITECTURE" => ModelFormat,
    /// A model metadata key is missing, mistyped or out of range.
    Metadata = "METADATA" => ModelFormat,
    MissingTensor = "MISSING_TENSOR" => ModelFormat,
    TensorShape = "TENSOR_SHAPE" => ModelFormat,
    /// Hyperparameters that contradict each other.
    Inconsistent = "INCONSISTENT" => ModelFormat,
    /// A metadata count is zero or beyond what any model needs (the message names the key).
    MetadataOutOfRange = "METADATA_OUT_OF_RANGE" => ModelFormat,
    /// A metadata count disagrees with the tensors in the file or with another key.
    CountMismatch = "COUNT_MISMATCH" => ModelFormat,
    /// A count is not a multiple of another (query heads of KV heads).
    NotDivisible = "NOT_DIVISIBLE" => ModelFormat,
    /// A metadata number Hearth cannot compute with (a NaN or negative epsilon).
    InvalidMetadataValue = "INVALID_METADATA_VALUE" => ModelFormat,
    UnsupportedTensorType = "UNSUPPORTED_TENSOR_TYPE" => ModelFormat,
    /// A weight's bytes do not match its shape and type.
    BadWeight = "BAD_WEIGHT" => ModelFormat,
    /// A model feature Hearth does not implement.
    Unsupported = "UNSUPPORTED" => ModelFormat,
    Tokenizer = "TOKENIZER" => ModelFormat,
    UnsupportedChatTemplate = "UNSUPPORTED_CHAT_TEMPLATE" => ModelFormat,
    /// The file is not the one the catalog entry describes.
    CatalogMismatch = "CATALOG_MISMATCH" => ModelFormat,
    // ModelLoadError
    NotEnoughMemory = "NOT_ENOUGH_MEMORY" => ModelLoad,
    /// A buffer the model needs exceeds a limit of the device (binding or buffer size).
    ExceedsDeviceLimit = "EXCEEDS_DEVICE_LIMIT" => ModelLoad,
    ModelUnloaded = "MODEL_UNLOADED" => ModelLoad,
    /// The compute device failed an allocation or a launch.
    Device = "DEVICE" => ModelLoad,
    DeviceReadFailed = "DEVICE_READ_FAILED" => ModelLoad,
    // DeviceLostError
    DeviceLost = "DEVICE_LOST" => DeviceLost,
    // OutOfMemoryError
    OutOfMemory = "OUT_OF_MEMORY" => OutOfMemory,
    // IntegrityError
    /// A file's SHA-256 or size is not the expected one; the file was deleted and not used.
    IntegrityMismatch = "INTEGRITY_MISMATCH" => Integrity,
    // GpuError
    /// A WebGPU validation or internal error no error scope caught, during a generation or a
    /// load (an uncaptured out-of-memory error is `OUT_OF_MEMORY`).
    GpuError = "GPU_ERROR" => Gpu,
    // WorkerError and worker mode's CancelledError (raised by the package's page-side JS)
    /// The Worker did not start: a wrong URL, a script error, WebAssembly that does not
    /// instantiate, or no answer in time.
    WorkerFailed = "WORKER_FAILED" => Worker,
    /// A call to a worker-mode manager after (or in flight at) its `terminate()`.
    WorkerTerminated = "WORKER_TERMINATED" => Cancelled,
}

impl ErrorCode {
    /// The code whose JS string is `text` (GGUF reader codes included when `text` is one).
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == text)
            .or_else(|| crate::gguf::GgufError::CODES.iter().find(|&&c| c == text).map(|&c| ErrorCode::Gguf(c)))
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A structured field of an error (`error.<name>` in JS), for a UI to read without parsing the
/// message.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    Text(String),
    Number(f64),
}

impl From<String> for Detail {
    fn from(s: String) -> Detail {
        Detail::Text(s)
    }
}

impl From<&str> for Detail {
    fn from(s: &str) -> Detail {
        Detail::Text(s.to_owned())
    }
}

impl From<u64> for Detail {
    fn from(n: u64) -> Detail {
        Detail::Number(n as f64)
    }
}

/// A core error as an app sees it: its code (and so its class), its message and its fields.
pub trait Coded: fmt::Display {
    fn code(&self) -> ErrorCode;

    /// The message an app shows; the `Display` text unless the layer words it for apps.
    fn message(&self) -> String {
        self.to_string()
    }

    /// Named fields beside the message, in the order an app reads them.
    fn details(&self) -> Vec<(&'static str, Detail)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests;
