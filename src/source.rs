//! Where model bytes come from, in rules independent of the browser: why a read failed
//! ([`SourceError`]), how often download progress is worth reporting ([`Throttle`]), the HTTP
//! headers a ranged read sends and reads, the length check every body passes, and the names of
//! files in the model cache. The web layer's `source.rs` and `cache.rs` do the `fetch`, `Blob`
//! and file-system calls around them.

use std::fmt;
use std::ops::Range;

use crate::error::{Coded, Detail, ErrorCode};
use crate::manager::CatalogEntry;

/// Why bytes could not be had.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceError {
    /// The server answered with an error status.
    Http { url: String, status: u16, status_text: String },
    /// `fetch` itself failed: offline, DNS, or a cross-origin response without CORS
    /// headers (browsers do not say which).
    Network { url: String, detail: String },
    /// The body ended before the announced length.
    Truncated { url: String, expected: u64, received: u64 },
    /// The caller's `AbortSignal` fired.
    Aborted { url: String },
    /// A `Blob` or buffer read failed, or a read fell outside the source.
    Read { detail: String },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Http { url, status, status_text } => write!(
                f,
                "Downloading {url} failed: HTTP {status}{}{}. Check the URL and that the server serves the file.",
                if status_text.is_empty() { "" } else { " " },
                status_text
            ),
            SourceError::Network { url, detail } => write!(
                f,
                "Downloading {url} failed before any response ({detail}). The network may be down, or the \
                 server is on another origin and does not send Access-Control-Allow-Origin (CORS)."
            ),
            SourceError::Truncated { url, expected, received } => write!(
                f,
                "Downloading {url} stopped after {received} of {expected} bytes. The connection was cut \
                 or the server sent less than it announced; try again."
            ),
            SourceError::Aborted { url } => write!(f, "Downloading {url} was cancelled."),
            SourceError::Read { detail } => write!(f, "Reading the model bytes failed: {detail}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// A failed download is a `DownloadError` with the `url` (and `status`, 0 when there was no
/// response, or the byte counts of a cut body); a cancelled one a `CancelledError`.
impl Coded for SourceError {
    fn code(&self) -> ErrorCode {
        match self {
            SourceError::Http { .. } => ErrorCode::HttpStatus,
            SourceError::Network { .. } => ErrorCode::NetworkError,
            SourceError::Truncated { .. } => ErrorCode::TruncatedBody,
            SourceError::Aborted { .. } => ErrorCode::Aborted,
            SourceError::Read { .. } => ErrorCode::ReadFailed,
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            SourceError::Http { url, status, .. } => {
                vec![("url", url.as_str().into()), ("status", u64::from(*status).into())]
            }
            SourceError::Network { url, .. } => vec![("url", url.as_str().into()), ("status", 0u64.into())],
            SourceError::Truncated { url, expected, received } => vec![
                ("url", url.as_str().into()),
                ("expectedBytes", (*expected).into()),
                ("receivedBytes", (*received).into()),
            ],
            SourceError::Aborted { url } => vec![("url", url.as_str().into())],
            SourceError::Read { .. } => Vec::new(),
        }
    }
}

impl SourceError {
    /// A body larger than one browser buffer holds (`ArrayBuffer`s stop below 4 GiB).
    pub fn too_large(url: &str, bytes: Option<u64>) -> SourceError {
        let size = bytes.map_or_else(
            || "larger than one browser buffer can hold".to_owned(),
            |n| format!("{n} bytes, too large to hold in one browser buffer"),
        );
        SourceError::Read { detail: format!("{url} is {size}; serve it with HTTP Range support") }
    }

    /// A server that sent more than the `announced` bytes.
    pub fn overlong(url: &str, announced: u64) -> SourceError {
        SourceError::Read { detail: format!("{url} sent more than the {announced} bytes it announced") }
    }
}

/// The most one browser buffer holds.
pub const MAX_BUFFER: u64 = u32::MAX as u64;

/// A body of `received` bytes is complete when it has the `expected` length (when one was
/// announced).
pub fn check_complete(url: &str, expected: Option<u64>, received: u64) -> Result<(), SourceError> {
    match expected {
        Some(n) if n != received => Err(SourceError::Truncated { url: url.to_owned(), expected: n, received }),
        _ => Ok(()),
    }
}

/// The `Range` header value for `range` (an HTTP byte range is inclusive at both ends).
pub fn range_header(range: &Range<u64>) -> String {
    format!("bytes={}-{}", range.start, range.end.saturating_sub(1))
}

/// The total from `Content-Range: bytes a-b/total` (`*` means unknown).
pub fn content_range_total(value: &str) -> Option<u64> {
    value.rsplit('/').next()?.trim().parse().ok()
}

/// A `Content-Length` value.
pub fn content_length(value: &str) -> Option<u64> {
    value.trim().parse().ok()
}

/// Download progress worth reporting: at most once per percent (or per MiB when the total is
/// unknown), the first report always, and the last (everything received) exactly once.
#[derive(Debug, Default)]
pub struct Throttle {
    last_step: Option<u64>,
}

impl Throttle {
    /// Whether `loaded` of `total` bytes is news; remembers it when it is.
    pub fn admit(&mut self, loaded: u64, total: Option<u64>) -> bool {
        let step = match total {
            Some(t) if t > 0 => loaded.saturating_mul(100) / t,
            _ => loaded >> 20,
        };
        let done = total.is_some_and(|t| loaded >= t);
        if (self.last_step == Some(step) && !done) || (done && self.last_step == Some(u64::MAX)) {
            return false;
        }
        self.last_step = Some(if done { u64::MAX } else { step });
        true
    }
}

/// The model cache's file name for `entry`: its key, and the start of its sha256 (or its size)
/// so that a changed file is a different entry.
pub fn cache_file_name(entry: &CatalogEntry) -> String {
    let id = match entry.sha256.as_deref() {
        Some(hash) => hash.get(..16).unwrap_or(hash).to_owned(),
        None => entry.file_bytes.to_string(),
    };
    format!("{}-{id}.gguf", entry.key)
}

/// The key of a cache file name (`<key>-<id>.gguf`).
pub fn cache_key_of(name: &str) -> &str {
    name.rsplit_once('-').map_or(name, |(key, _)| key)
}

#[cfg(test)]
mod tests;
