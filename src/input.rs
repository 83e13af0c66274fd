//! Values from callers, checked before any state changes.
//!
//! JS hands numbers over as `f64` and names as strings that may be empty; the checks that turn
//! them into the core's types (byte counts, counts, keys) live here, once, with an
//! [`InputError`] whose message names the argument. The web layer only reads the values out of
//! JS and converts the error into an `InvalidInputError`.

use std::fmt;

/// The largest integer an `f64` (a JS number) holds exactly: `Number.MAX_SAFE_INTEGER`.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

use crate::error::ErrorCode;

/// What kind of caller value was refused; each has its own stable error code in JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// An argument of a method (`INVALID_ARGUMENT`).
    Argument,
    /// A field of an options object (`INVALID_OPTIONS`).
    Options,
    /// The data of a status event or an SSE frame given to emit (`INVALID_EVENT_DATA`).
    EventData,
    /// An event type that does not exist (`UNKNOWN_EVENT_TYPE`).
    EventType,
    /// An SSE frame that cannot be written without changing its meaning (`INVALID_SSE_FRAME`).
    SseFrame,
}

impl InputKind {
    /// The stable code JS sees.
    pub fn code(self) -> ErrorCode {
        match self {
            InputKind::Argument => ErrorCode::InvalidArgument,
            InputKind::Options => ErrorCode::InvalidOptions,
            InputKind::EventData => ErrorCode::InvalidEventData,
            InputKind::EventType => ErrorCode::UnknownEventType,
            InputKind::SseFrame => ErrorCode::InvalidSseFrame,
        }
    }
}

/// A caller's value the core cannot use. The message is for people and names the argument.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError {
    pub kind: InputKind,
    pub message: String,
}

impl InputError {
    pub fn new(kind: InputKind, message: impl Into<String>) -> InputError {
        InputError { kind, message: message.into() }
    }

    pub fn argument(message: impl Into<String>) -> InputError {
        InputError::new(InputKind::Argument, message)
    }

    pub fn options(message: impl Into<String>) -> InputError {
        InputError::new(InputKind::Options, message)
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl crate::error::Coded for InputError {
    fn code(&self) -> ErrorCode {
        self.kind.code()
    }
}

impl std::error::Error for InputError {}

/// A byte count (or any exact integer): finite, non-negative, whole and within
/// [`MAX_SAFE_INTEGER`]; `None` otherwise.
pub fn exact_integer(value: f64) -> Option<u64> {
    (value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER).then_some(value as u64)
}

/// A count where only the sign matters (`replay(n)`, `lastEventId`): non-negative, fractions
/// round down, and counts past what can exist saturate; `None` for NaN and negatives.
pub fn lenient_count(value: f64) -> Option<u64> {
    if value.is_nan() || value < 0.0 {
        return None;
    }
    Some(if value >= u64::MAX as f64 { u64::MAX } else { value as u64 })
}

/// A byte count argument, refused with a message naming `what`.
pub fn bytes(value: f64, what: &str) -> Result<u64, InputError> {
    exact_integer(value).ok_or_else(|| {
        InputError::argument(format!("{what} must be a non-negative integer number of bytes, got {value}."))
    })
}

/// A model key argument: a non-empty string (`None` stands for a value that was not a string).
pub fn key(value: Option<String>, what: &str) -> Result<String, InputError> {
    match value {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(InputError::argument(format!("{what}: the model key must be a non-empty string."))),
    }
}

/// `LoadOptions.threads`: a whole number from 1 to `max` (the CPU engine's cap).
pub fn threads(value: f64, max: u32) -> Result<u32, InputError> {
    match exact_integer(value) {
        Some(t) if (1..=u64::from(max)).contains(&t) => Ok(t as u32),
        _ => Err(InputError::options(format!("threads must be a whole number from 1 to {max}, got {value}."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_whole_and_within_the_cap() {
        assert_eq!(threads(1.0, 16), Ok(1));
        assert_eq!(threads(16.0, 16), Ok(16));
        for bad in [0.0, -1.0, 2.5, 17.0, f64::NAN, f64::INFINITY] {
            let e = threads(bad, 16).unwrap_err();
            assert_eq!(e.kind, InputKind::Options);
            assert!(e.message.starts_with("threads must be a whole number from 1 to 16"), "{}", e.message);
        }
    }

    #[test]
    fn exact_integers_are_whole_finite_non_negative_and_safe() {
        assert_eq!(exact_integer(0.0), Some(0));
        assert_eq!(exact_integer(4096.0), Some(4096));
        assert_eq!(exact_integer(MAX_SAFE_INTEGER), Some(9_007_199_254_740_991));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY, MAX_SAFE_INTEGER + 2.0] {
            assert_eq!(exact_integer(bad), None, "{bad}");
        }
    }

    #[test]
    fn lenient_counts_round_down_and_saturate() {
        assert_eq!(lenient_count(0.0), Some(0));
        assert_eq!(lenient_count(2.9), Some(2));
        assert_eq!(lenient_count(f64::INFINITY), Some(u64::MAX));
        assert_eq!(lenient_count(1e30), Some(u64::MAX));
        assert_eq!(lenient_count(-0.5), None);
        assert_eq!(lenient_count(f64::NAN), None);
    }

    #[test]
    fn byte_arguments_name_what_was_wrong() {
        assert_eq!(bytes(10.0, "x"), Ok(10));
        let e = bytes(-3.0, "registerLoaded: bytes").unwrap_err();
        assert_eq!(e.kind, InputKind::Argument);
        assert_eq!(e.to_string(), "registerLoaded: bytes must be a non-negative integer number of bytes, got -3.");
        assert_eq!(e.kind.code().as_str(), "INVALID_ARGUMENT");
    }

    #[test]
    fn keys_must_be_non_empty_strings() {
        assert_eq!(key(Some("gemma".into()), "pin"), Ok("gemma".to_owned()));
        assert_eq!(
            key(Some(String::new()), "pin").unwrap_err().message,
            "pin: the model key must be a non-empty string."
        );
        assert!(key(None, "touch").is_err());
    }
}
