//! The typed payloads of the status stream.
//!
//! Every event serialises (JSON, and JS objects through serde-wasm-bindgen) to
//! `{ type, data, id, timestamp, modelKey? }`: the `detail` of the DOM
//! `CustomEvent`, the argument of `subscribe` callbacks, and the `data:` of an SSE
//! frame all share this one shape.

use serde::{Deserialize, Serialize};

/// What an event is about. Its lowercase name is the DOM event type and the SSE
/// `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Info,
    Error,
    Progress,
    Metrics,
    Token,
    Done,
}

impl EventKind {
    pub const ALL: [EventKind; 6] =
        [EventKind::Info, EventKind::Error, EventKind::Progress, EventKind::Metrics, EventKind::Token, EventKind::Done];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Info => "info",
            EventKind::Error => "error",
            EventKind::Progress => "progress",
            EventKind::Metrics => "metrics",
            EventKind::Token => "token",
            EventKind::Done => "done",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One event on the stream. `id` is strictly increasing per stream, starting at 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    #[serde(flatten)]
    pub payload: Payload,
    pub id: u64,
    /// Whole milliseconds since the Unix epoch (`Date.now()` in the browser).
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_key: Option<String>,
}

impl StatusEvent {
    pub fn kind(&self) -> EventKind {
        self.payload.kind()
    }
}

/// The `type` tag and its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
pub enum Payload {
    Info(String),
    Error(ErrorInfo),
    Progress(Progress),
    Metrics(Metrics),
    Token(TokenEvent),
    Done(DoneStats),
}

impl Payload {
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::Info(_) => EventKind::Info,
            Payload::Error(_) => EventKind::Error,
            Payload::Progress(_) => EventKind::Progress,
            Payload::Metrics(_) => EventKind::Metrics,
            Payload::Token(_) => EventKind::Token,
            Payload::Done(_) => EventKind::Done,
        }
    }
}

/// An error as the UI sees it: the JS `Error`'s `name`, `message` and `stack`, and
/// for Hearth's own errors a stable `code`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    pub name: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl ErrorInfo {
    pub fn new(name: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorInfo { name: name.into(), message: message.into(), stack: None, code: None }
    }

    /// An error of Hearth's own: the class follows from the code.
    pub fn of(code: crate::error::ErrorCode, message: impl Into<String>) -> Self {
        ErrorInfo {
            name: code.class().js_name().to_owned(),
            message: message.into(),
            stack: None,
            code: Some(code.as_str().to_owned()),
        }
    }
}

/// Which stage of getting a model onto the GPU the bytes belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Download,
    Cache,
    Upload,
    Ready,
}

/// Byte progress of one phase. `percent` is derived from `loaded / total` when the
/// total is known, and absent otherwise (a stream without `Content-Length`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub phase: Phase,
    pub loaded: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<f64>,
}

impl Progress {
    /// Builds a progress record, computing the percentage (capped at 100: a server
    /// may send more bytes than it announced).
    pub fn new(phase: Phase, loaded: u64, total: Option<u64>) -> Self {
        let percent = total.map(|t| if t == 0 { 100.0 } else { ((loaded as f64 / t as f64) * 100.0).min(100.0) });
        Progress { phase, loaded, total, percent }
    }
}

/// Resident memory as measured by the memory manager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    pub used_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_percent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_models: Option<u32>,
}

/// One generated token: its decoded text (complete UTF-8 only, possibly empty while
/// a multi-byte character is still incomplete), its vocabulary id and its index in
/// the answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenEvent {
    pub text: String,
    pub token_id: u32,
    pub index: u32,
}

/// Why generation stopped: one vocabulary for the `done` event and the generation result,
/// aligned with OpenAI's `finish_reason` (`'stop'`, `'length'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// `'eos'`: the model produced an end-of-generation token (EOS, EOT, `<end_of_turn>`...).
    #[serde(rename = "eos")]
    EndOfSequence,
    /// `'stop'`: one of the caller's stop strings appeared in the text.
    #[serde(rename = "stop")]
    StopString,
    /// `'length'`: `maxTokens` tokens were generated.
    #[serde(rename = "length")]
    MaxTokens,
    /// `'cancelled'`: the caller stopped it (the token callback, an `AbortSignal`, `cancel()`).
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl StopReason {
    pub const ALL: [StopReason; 4] =
        [StopReason::EndOfSequence, StopReason::StopString, StopReason::MaxTokens, StopReason::Cancelled];

    /// The name JS sees (`'eos' | 'stop' | 'length' | 'cancelled'`).
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfSequence => "eos",
            StopReason::StopString => "stop",
            StopReason::MaxTokens => "length",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// The final statistics of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoneStats {
    pub text: String,
    pub prompt_tokens: u32,
    /// Of `prompt_tokens`, how many the model's KV cache already held (not evaluated again).
    /// Absent in a `done` a page emits itself: 0.
    #[serde(default)]
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    pub ttft_ms: f64,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    pub stop_reason: StopReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reasons_serialise_as_their_names_and_only_those() {
        for reason in StopReason::ALL {
            let json = serde_json::to_string(&reason).unwrap();
            assert_eq!(json, format!("\"{}\"", reason.as_str()));
            assert_eq!(serde_json::from_str::<StopReason>(&json).unwrap(), reason);
        }
        let names: Vec<&str> = StopReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["eos", "stop", "length", "cancelled"]);
        for old in ["\"maxTokens\"", "\"stopString\"", "\"eog\"", "\"error\""] {
            assert!(serde_json::from_str::<StopReason>(old).is_err(), "{old}");
        }
    }

    /// The TypeScript declarations (wherever in `src/web/` they live) declare the same
    /// vocabulary, and both the result and the `done` event use it.
    #[test]
    fn typescript_declares_the_same_stop_reasons() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
        let mut declared = None;
        let mut uses = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
            if let Some(at) = text.find("export type StopReason =") {
                let decl = &text[at..at + text[at..].find(';').unwrap()];
                declared = Some(decl.split('\'').skip(1).step_by(2).map(str::to_owned).collect::<Vec<_>>());
            }
            uses += text.matches("stopReason: StopReason;").count();
        }
        let names: Vec<String> = StopReason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
        assert_eq!(declared, Some(names));
        assert_eq!(uses, 2, "GenerationResult and DoneData both use StopReason");
    }
}
