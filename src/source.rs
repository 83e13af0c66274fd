//! Where model bytes come from, in rules independent of the browser: why a read failed
//! ([`SourceError`]), how a download's [`Body`] is read chunk by chunk ([`stream_body`]: the
//! length checks every body passes), how often download progress is worth reporting
//! ([`Throttle`], [`ProgressReporter`]), the HTTP headers a ranged read sends and reads, and the
//! names of files in the model cache. The web layer's `source.rs` and `cache.rs` do the
//! `fetch`, `Blob` and file-system calls around them.

use std::cell::RefCell;
use std::fmt;
use std::ops::Range;
use std::rc::Rc;

use crate::error::{Coded, Detail, ErrorCode};
use crate::manager::CatalogEntry;
use crate::status::{Phase, Progress, StatusStream};

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

    /// A read of `range` from a source of `len` bytes (when known) that does not hold it.
    pub fn check_range(range: &Range<u64>, len: Option<u64>) -> Result<(), SourceError> {
        match len {
            Some(len) if range.end > len || range.start > range.end => Err(SourceError::Read {
                detail: format!("bytes {}..{} are outside the {len}-byte file", range.start, range.end),
            }),
            _ => Ok(()),
        }
    }

    /// A ranged read of `url` that the server answered with `status` rather than 206 (`None`:
    /// the server never honoured ranges).
    pub fn no_ranges(url: &str, status: Option<u16>) -> SourceError {
        let detail = match status {
            Some(status) => format!("{url} stopped honouring range requests (HTTP {status})"),
            None => format!("{url} does not support range requests"),
        };
        SourceError::Read { detail }
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

/// A body announcing `announced` bytes fits in a buffer of at most `limit` bytes.
pub fn check_fits(url: &str, announced: Option<u64>, limit: u64) -> Result<(), SourceError> {
    match announced {
        Some(n) if n > limit => Err(SourceError::too_large(url, Some(n))),
        _ => Ok(()),
    }
}

/// A piece of a download's body: bytes in memory here, a JS buffer in the browser.
pub trait Chunk {
    fn byte_len(&self) -> u64;
    /// The bytes, in this memory.
    fn into_bytes(self) -> Vec<u8>;
    /// Copies `into.len()` bytes from offset `from` of the chunk into `into`.
    fn copy_to(&self, from: u64, into: &mut [u8]);
}

impl Chunk for Vec<u8> {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }

    fn into_bytes(self) -> Vec<u8> {
        self
    }

    fn copy_to(&self, from: u64, into: &mut [u8]) {
        into.copy_from_slice(&self[from as usize..from as usize + into.len()]);
    }
}

/// A download's body, chunk by chunk.
#[allow(async_fn_in_trait)] // awaited where it is made; no Send needed on wasm
pub trait Body {
    type Chunk: Chunk;
    /// The length the server announced.
    fn announced_len(&self) -> Option<u64>;
    /// The next chunk; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Self::Chunk>, SourceError>;
    /// Stops the download (nothing more will be read).
    fn cancel(&mut self);
}

/// Reads `body` (the download of `url`) to its end, handing each chunk and its offset to `take`
/// and the bytes received so far to `progress`; returns how many bytes came. The body is
/// cancelled and refused when it announces more than `limit` bytes (before any is read), when
/// it sends more than it announced or than `limit` (before `take` sees the excess), and when
/// `take` fails. A body that ends short of its announced length is [`SourceError::Truncated`].
pub async fn stream_body<B: Body, E: From<SourceError>>(
    url: &str,
    body: &mut B,
    limit: u64,
    mut take: impl AsyncFnMut(B::Chunk, u64) -> Result<(), E>,
    progress: &dyn Fn(u64),
) -> Result<u64, E> {
    let announced = body.announced_len();
    if let Err(e) = check_fits(url, announced, limit) {
        body.cancel();
        return Err(e.into());
    }
    let mut received = 0u64;
    while let Some(chunk) = body.next_chunk().await? {
        let end = received + chunk.byte_len();
        let refused = match announced {
            Some(n) if end > n => Some(SourceError::overlong(url, n)),
            _ if end > limit => Some(SourceError::too_large(url, None)),
            _ => None,
        };
        if let Some(e) = refused {
            body.cancel();
            return Err(e.into());
        }
        if let Err(e) = take(chunk, received).await {
            body.cancel();
            return Err(e);
        }
        received = end;
        progress(received);
    }
    check_complete(url, announced, received)?;
    Ok(received)
}

/// The most a [`Cursor`] reads and drops to reach a later range instead of the caller making a
/// new request: about what a browser request's round trip costs in bytes here (~40 ms).
pub const SKIP_BYTES: u64 = 8 << 20;

/// The body of one download of a file from offset `pos` on, read by ranges in increasing order.
/// A model's upload reads its tensors in file order, so one request serves the whole upload, and
/// the browser receives the next tensor while the last one is uploaded; a request per tensor
/// (or per few MB) costs a round trip each, more than the bytes take to arrive.
pub struct Cursor<B: Body> {
    body: B,
    /// File offset of the next byte not taken.
    pos: u64,
    /// The untaken rest of the last chunk: the chunk and where the rest starts in it.
    rest: Option<(B::Chunk, u64)>,
}

impl<B: Body> Cursor<B> {
    /// A cursor over `body`, whose first byte is the file's byte `start`.
    pub fn new(body: B, start: u64) -> Self {
        Cursor { body, pos: start, rest: None }
    }

    /// Whether [`Self::read`] can serve `range`: it starts at or at most [`SKIP_BYTES`] after the
    /// next byte not taken.
    pub fn serves(&self, range: &Range<u64>) -> bool {
        range.start >= self.pos && range.start - self.pos <= SKIP_BYTES
    }

    /// The bytes of `range` (one this cursor [`Self::serves`]; the bytes before it are dropped),
    /// calling `received` with the bytes of it received so far as chunks arrive.
    ///
    /// # Errors
    /// The body's; [`SourceError::Truncated`] when it ends before `range` does;
    /// [`SourceError::Read`] for a range this cursor has passed.
    pub async fn read(&mut self, url: &str, range: Range<u64>, received: &dyn Fn(u64)) -> Result<Vec<u8>, SourceError> {
        if range.start < self.pos {
            return Err(SourceError::Read { detail: format!("{url}: bytes {range:?} were read already") });
        }
        let mut out = vec![0u8; (range.end - range.start) as usize];
        let mut filled = 0u64;
        while self.pos < range.end {
            let (chunk, from) = match self.rest.take() {
                Some(rest) => rest,
                None => match self.body.next_chunk().await? {
                    Some(chunk) => (chunk, 0),
                    None => {
                        let (expected, received) = (range.end - range.start, filled);
                        return Err(SourceError::Truncated { url: url.to_owned(), expected, received });
                    }
                },
            };
            let len = chunk.byte_len() - from;
            let skip = (range.start - self.pos.min(range.start)).min(len);
            let take = (len - skip).min(range.end - (self.pos + skip));
            if take > 0 {
                chunk.copy_to(from + skip, &mut out[filled as usize..(filled + take) as usize]);
                filled += take;
                received(filled);
            }
            self.pos += skip + take;
            if skip + take < len {
                self.rest = Some((chunk, from + skip + take));
            }
        }
        Ok(out)
    }

    /// Stops the download.
    pub fn cancel(&mut self) {
        self.rest = None;
        self.body.cancel();
    }
}

/// Where a [`ProgressReporter`] also reports: the JS `onProgress` callback in the browser.
pub trait ProgressCallback {
    fn call(&self, progress: &Progress);
}

/// Reports byte progress (phase `download`) as often as the [`Throttle`] admits: to a callback,
/// and (or instead) as `progress` events on a status stream, tagged with a model key.
pub struct ProgressReporter<C> {
    callback: Option<C>,
    status: Option<(Rc<StatusStream>, String)>,
    throttle: RefCell<Throttle>,
}

impl<C: ProgressCallback> ProgressReporter<C> {
    pub fn new(callback: Option<C>) -> Self {
        ProgressReporter { callback, status: None, throttle: RefCell::default() }
    }

    /// Reports as `progress` events on `status`, for `key`.
    pub fn to_status(status: Rc<StatusStream>, key: &str) -> Self {
        ProgressReporter { callback: None, status: Some((status, key.to_owned())), throttle: RefCell::default() }
    }

    /// `loaded` of `total` bytes are here.
    pub fn report(&self, loaded: u64, total: Option<u64>) {
        if (self.callback.is_none() && self.status.is_none()) || !self.throttle.borrow_mut().admit(loaded, total) {
            return;
        }
        let progress = Progress::new(Phase::Download, loaded, total);
        if let Some((status, key)) = &self.status {
            status.progress(progress.clone(), Some(key));
        }
        if let Some(callback) = &self.callback {
            callback.call(&progress);
        }
    }

    /// What `progress` hears from a read that starts `offset` bytes into a file of `total`.
    pub fn hook(progress: Option<&Self>, offset: u64, total: Option<u64>) -> impl Fn(u64) {
        move |n| progress.iter().for_each(|p| p.report(offset + n, total))
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
