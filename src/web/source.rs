//! Where GGUF bytes come from in the browser: a buffer the page already has, a
//! `Blob`/`File` the user picked, or a URL read with `fetch`.
//!
//! A URL is opened header first: a `Range` request for the first bytes, more
//! ranges while the header asks for them. Later reads (a model's upload, in file
//! order) are served from one request for the rest of the file, read as far as they
//! go ([`Cursor`]); a read behind it, or far ahead, starts another. When the
//! server ignores `Range` (answers 200), the body is streamed once into a single
//! JS buffer of the announced size, with progress, and every read is served from
//! it — the file is never held twice.
//!
//! [`Reading`] is the core loader's [`ByteSource`] over any of them; the header loop and the
//! upload are the core's ([`crate::infer::load`]), and so are the errors, the chunk loop every
//! body is read through, the progress reporter, the header formats and the length checks
//! ([`crate::source`]).

use std::cell::RefCell;
use std::ops::Range;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, ReadableStreamDefaultReader, RequestInit, Response};

use super::error::JsError;
use crate::gguf::GgufHeader;
use crate::infer::load::{ByteSource, HEADER_PROBE, read_header, read_header_from};
pub use crate::source::SourceError;
use crate::source::{Body, Chunk, Cursor, MAX_BUFFER, ProgressCallback, content_length, content_range_total};
use crate::source::{range_header, stream_body};
use crate::status::Progress;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &str, init: &RequestInit) -> Promise;
}

/// Reports byte progress to a JS `onProgress` callback and (or) a status stream.
pub type ProgressReporter = crate::source::ProgressReporter<Function>;

impl ProgressCallback for Function {
    fn call(&self, progress: &Progress) {
        if let Ok(value) = serde_wasm_bindgen::to_value(progress)
            && let Err(e) = self.call1(&JsValue::UNDEFINED, &value)
        {
            web_sys::console::error_2(&JsValue::from_str("Hearth: onProgress threw:"), &e);
        }
    }
}

/// A byte source for a GGUF file.
pub enum Source {
    /// Bytes the page already holds (an `ArrayBuffer` or a view on one).
    Bytes(Uint8Array),
    /// A `Blob` or `File`; read slice by slice.
    Blob(Blob),
    Url(UrlSource),
}

pub struct UrlSource {
    pub url: String,
    pub total: Option<u64>,
    pub ranges: bool,
    /// Bytes already downloaded, and the file offset they start at.
    body: RefCell<Option<(u64, Uint8Array)>>,
    /// The open download the reads in progress take their bytes from, and the signal it obeys.
    stream: RefCell<Option<(Cursor<ResponseBody>, Option<AbortSignal>)>>,
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Bytes(_) => "bytes",
            Source::Blob(_) => "blob",
            Source::Url(_) => "url",
        }
    }

    pub fn len(&self) -> Option<u64> {
        match self {
            Source::Bytes(b) => Some(u64::from(b.length())),
            Source::Blob(b) => Some(b.size() as u64),
            Source::Url(u) => u.total,
        }
    }

    /// Reads `range` (out-of-range is an error), calling `received` with the bytes of it
    /// received so far as chunks arrive (URL sources).
    pub async fn read(
        &self,
        range: Range<u64>,
        signal: Option<&AbortSignal>,
        received: &dyn Fn(u64),
    ) -> Result<Vec<u8>, SourceError> {
        SourceError::check_range(&range, self.len())?;
        match self {
            Source::Bytes(b) => Ok(b.subarray(range.start as u32, range.end as u32).to_vec()),
            Source::Blob(b) => read_blob(b, range).await.map_err(read_error),
            Source::Url(u) => {
                if let Some((start, body)) = &*u.body.borrow()
                    && range.start >= *start
                    && range.end <= start + u64::from(body.length())
                {
                    return Ok(body.subarray((range.start - start) as u32, (range.end - start) as u32).to_vec());
                }
                u.read_streamed(range, signal, received).await
            }
        }
    }

    /// The core loader's view of this source, reads cancelled by `signal`.
    pub fn reading<'a>(&'a self, signal: Option<&'a AbortSignal>) -> Reading<'a> {
        Reading { source: self, signal }
    }
}

/// A [`Source`] with the `AbortSignal` its reads obey: what the core loader reads from. Its
/// reads of a URL share one download, stopped when it is dropped.
pub struct Reading<'a> {
    source: &'a Source,
    signal: Option<&'a AbortSignal>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if let Source::Url(u) = self.source {
            u.close();
        }
    }
}

impl ByteSource for Reading<'_> {
    type Error = SourceError;

    fn file_len(&self) -> Option<u64> {
        self.source.len()
    }

    async fn read(&self, range: Range<u64>, received: &dyn Fn(u64)) -> Result<Vec<u8>, SourceError> {
        self.source.read(range, self.signal, received).await
    }
}

/// The bytes of `range` of `blob`, or what the browser threw.
pub(super) async fn read_blob(blob: &Blob, range: Range<u64>) -> Result<Vec<u8>, JsValue> {
    let slice = blob.slice_with_f64_and_f64(range.start as f64, range.end as f64)?;
    Ok(Uint8Array::new(&JsFuture::from(slice.array_buffer()).await?).to_vec())
}

fn read_error(e: JsValue) -> SourceError {
    SourceError::Read { detail: js_message(&e) }
}

pub(super) fn js_message(e: &JsValue) -> String {
    Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

/// What the browser threw while downloading `url`: a cancellation when the signal fired or it is
/// an `AbortError`, else `otherwise`.
fn aborted_or(e: &JsValue, url: &str, signal: Option<&AbortSignal>, otherwise: SourceError) -> SourceError {
    let name = Reflect::get(e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string());
    match signal.is_some_and(AbortSignal::aborted) || name.as_deref() == Some("AbortError") {
        true => SourceError::Aborted { url: url.to_owned() },
        false => otherwise,
    }
}

/// `fetch(url, { headers: { Range }, signal })`.
async fn fetch(url: &str, range: Option<Range<u64>>, signal: Option<&AbortSignal>) -> Result<Response, SourceError> {
    let init = RequestInit::new();
    if let Some(r) = &range {
        let headers = js_sys::Object::new();
        let _ = Reflect::set(&headers, &JsValue::from_str("Range"), &JsValue::from_str(&range_header(r)));
        init.set_headers(&headers);
    }
    init.set_signal(signal);
    let response = JsFuture::from(global_fetch(url, &init)).await.map_err(|e| {
        aborted_or(&e, url, signal, SourceError::Network { url: url.to_owned(), detail: js_message(&e) })
    })?;
    let response: Response = response.unchecked_into();
    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(SourceError::Http { url: url.to_owned(), status, status_text: response.status_text() });
    }
    Ok(response)
}

/// `fetch(url)` for the whole body (no Range), of its `Content-Length` when the server sends
/// one: the model cache streams it to disk.
pub(super) async fn download(url: &str, signal: Option<&AbortSignal>) -> Result<ResponseBody, SourceError> {
    let response = fetch(url, None, signal).await?;
    let total = header(&response, "Content-Length").as_deref().and_then(content_length);
    ResponseBody::new(url, &response, total, signal)
        .ok_or_else(|| SourceError::Read { detail: format!("{url} sent no body") })
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// A zeroed `Uint8Array` of `n` bytes, or the browser's refusal as an error: an allocation this
/// large fails when memory is short, and the constructor's `RangeError` must not unwind through
/// wasm (`Reflect.construct` catches it).
fn zeroed(url: &str, n: u64) -> Result<Uint8Array, SourceError> {
    let class = Reflect::get(&js_sys::global(), &JsValue::from_str("Uint8Array")).map_err(read_error)?;
    Reflect::construct(class.unchecked_ref::<js_sys::Function>(), &js_sys::Array::of1(&JsValue::from_f64(n as f64)))
        .map(JsCast::unchecked_into)
        .map_err(|_| SourceError::too_large(url, Some(n)))
}

/// A `fetch` response's body as the core reads it, chunk by chunk (each chunk a JS buffer).
pub(super) struct ResponseBody {
    url: String,
    reader: ReadableStreamDefaultReader,
    announced: Option<u64>,
    received: u64,
    signal: Option<AbortSignal>,
}

impl ResponseBody {
    /// The body of `response`, `announced` bytes long when known; `None` when there is none.
    fn new(url: &str, response: &Response, announced: Option<u64>, signal: Option<&AbortSignal>) -> Option<Self> {
        let reader = response.body()?.get_reader().unchecked_into();
        Some(ResponseBody { url: url.to_owned(), reader, announced, received: 0, signal: signal.cloned() })
    }
}

impl Chunk for Uint8Array {
    fn byte_len(&self) -> u64 {
        u64::from(self.length())
    }

    fn into_bytes(self) -> Vec<u8> {
        self.to_vec()
    }

    fn copy_to(&self, from: u64, into: &mut [u8]) {
        self.subarray(from as u32, (from + into.len() as u64) as u32).copy_to(into);
    }
}

impl Body for ResponseBody {
    type Chunk = Uint8Array;

    fn announced_len(&self) -> Option<u64> {
        self.announced
    }

    async fn next_chunk(&mut self) -> Result<Option<Uint8Array>, SourceError> {
        let step = JsFuture::from(self.reader.read()).await.map_err(|e| {
            let (url, expected, received) = (self.url.clone(), self.announced.unwrap_or(0), self.received);
            aborted_or(&e, &self.url, self.signal.as_ref(), SourceError::Truncated { url, expected, received })
        })?;
        if Reflect::get(&step, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            return Ok(None);
        }
        let chunk: Uint8Array = Reflect::get(&step, &JsValue::from_str("value")).map_err(read_error)?.unchecked_into();
        self.received += chunk.byte_len();
        Ok(Some(chunk))
    }

    fn cancel(&mut self) {
        let _ = self.reader.cancel();
    }
}

/// Reads a response body into one JS buffer (browsers cap an `ArrayBuffer` below 4 GiB), made
/// at the announced size when there is one, calling `received` with the bytes received so far.
async fn read_body(
    url: &str,
    response: &Response,
    expected: Option<u64>,
    signal: Option<&AbortSignal>,
    received: &dyn Fn(u64),
) -> Result<Uint8Array, SourceError> {
    let Some(mut body) = ResponseBody::new(url, response, expected, signal) else {
        return Ok(Uint8Array::new_with_length(0));
    };
    // Made at the first chunk (after the core refused a body too large for it).
    let (mut fixed, mut chunks) = (None::<Uint8Array>, Vec::new());
    let take = async |chunk: Uint8Array, at: u64| {
        match (expected, &fixed) {
            (_, Some(buffer)) => buffer.set(&chunk, at as u32),
            (Some(n), None) => fixed.insert(zeroed(url, n)?).set(&chunk, at as u32),
            (None, None) => chunks.push(chunk),
        }
        Ok::<_, SourceError>(())
    };
    let len = stream_body(url, &mut body, MAX_BUFFER, take, received).await?;
    Ok(fixed.unwrap_or_else(|| {
        // Length unknown: join the chunks once at the end.
        let joined = Uint8Array::new_with_length(len as u32);
        let mut at = 0;
        for c in chunks {
            joined.set(&c, at);
            at += c.length();
        }
        joined
    }))
}

impl UrlSource {
    /// Fetches `range` and checks the server honoured it.
    async fn fetch_range(
        &self,
        range: Range<u64>,
        signal: Option<&AbortSignal>,
        received: &dyn Fn(u64),
    ) -> Result<Uint8Array, SourceError> {
        if !self.ranges {
            return Err(SourceError::no_ranges(&self.url, None));
        }
        let response = fetch(&self.url, Some(range.clone()), signal).await?;
        if response.status() != 206 {
            return Err(SourceError::no_ranges(&self.url, Some(response.status())));
        }
        read_body(&self.url, &response, Some(range.end - range.start), signal, received).await
    }

    /// `range`, from the download the last reads took theirs from when it can serve it (it obeys
    /// the same signal and has not passed `range`), else from a new one of the rest of the file,
    /// kept for the next reads. Progress counts only the bytes of `range`.
    async fn read_streamed(
        &self,
        range: Range<u64>,
        signal: Option<&AbortSignal>,
        received: &dyn Fn(u64),
    ) -> Result<Vec<u8>, SourceError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let kept = self.stream.borrow_mut().take();
        let mut cursor = match kept {
            Some((cursor, obeys)) if cursor.serves(&range) && same_signal(obeys.as_ref(), signal) => cursor,
            other => {
                if let Some((mut old, _)) = other {
                    old.cancel();
                }
                self.open_stream(range.start, range.end, signal).await?
            }
        };
        match cursor.read(&self.url, range, received).await {
            Ok(bytes) => {
                // A read that ran meanwhile may have left its own download: one is kept.
                if let Some((mut other, _)) = self.stream.replace(Some((cursor, signal.cloned()))) {
                    other.cancel();
                }
                Ok(bytes)
            }
            Err(e) => {
                cursor.cancel();
                Err(e)
            }
        }
    }

    /// A download from `start` to the end of the file (to `end` when its length is unknown).
    async fn open_stream(
        &self,
        start: u64,
        end: u64,
        signal: Option<&AbortSignal>,
    ) -> Result<Cursor<ResponseBody>, SourceError> {
        if !self.ranges {
            return Err(SourceError::no_ranges(&self.url, None));
        }
        let range = start..self.total.unwrap_or(end).max(end);
        let response = fetch(&self.url, Some(range.clone()), signal).await?;
        if response.status() != 206 {
            return Err(SourceError::no_ranges(&self.url, Some(response.status())));
        }
        let body = ResponseBody::new(&self.url, &response, Some(range.end - range.start), signal)
            .ok_or_else(|| SourceError::Read { detail: format!("{} sent no body", self.url) })?;
        Ok(Cursor::new(body, start))
    }

    /// Stops the download the reads took their bytes from.
    fn close(&self) {
        if let Some((mut cursor, _)) = self.stream.borrow_mut().take() {
            cursor.cancel();
        }
    }

    /// Downloads every byte from `start` to the end, once, with progress; later
    /// reads in that span are served from memory.
    pub async fn download_from(
        &self,
        start: u64,
        signal: Option<&AbortSignal>,
        progress: Option<&ProgressReporter>,
    ) -> Result<(), SourceError> {
        if self.body.borrow().as_ref().is_some_and(|(s, _)| *s <= start) {
            ProgressReporter::hook(progress, 0, self.total)(self.total.unwrap_or(0));
            return Ok(());
        }
        let total = self.total.ok_or_else(|| SourceError::Read { detail: "unknown file size".into() })?;
        let bytes =
            self.fetch_range(start..total, signal, &ProgressReporter::hook(progress, start, Some(total))).await?;
        *self.body.borrow_mut() = Some((start, bytes));
        Ok(())
    }
}

/// Whether two reads obey the same signal (the same object, or both none).
fn same_signal(a: Option<&AbortSignal>, b: Option<&AbortSignal>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => js_sys::Object::is(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Opens a URL and parses its GGUF header: ranges when the server supports
/// them, else the whole body streamed once (with progress).
pub async fn open_url(
    url: &str,
    signal: Option<&AbortSignal>,
    progress: Option<&ProgressReporter>,
) -> Result<(UrlSource, GgufHeader), JsError> {
    let response = fetch(url, Some(0..HEADER_PROBE), signal).await?;
    if response.status() == 206 {
        let total = header(&response, "Content-Range").as_deref().and_then(content_range_total);
        let want = total.map_or(HEADER_PROBE, |t| t.min(HEADER_PROBE));
        let first = read_body(url, &response, Some(want), signal, &|_| {}).await?.to_vec();
        let source = UrlSource {
            url: url.to_owned(),
            total,
            ranges: true,
            body: RefCell::default(),
            stream: RefCell::default(),
        };
        let report = ProgressReporter::hook(progress, 0, total);
        let header = read_header(first, total, async |range: Range<u64>| {
            let more = source.fetch_range(range.clone(), signal, &|_| {}).await?;
            report(range.end);
            Ok::<_, SourceError>(more.to_vec())
        })
        .await
        .map_err(JsError::from)?;
        return Ok((source, header));
    }
    // A 200: the server ignored Range and sends the whole file.
    let total = header(&response, "Content-Length").as_deref().and_then(content_length);
    let body = read_body(url, &response, total, signal, &ProgressReporter::hook(progress, 0, total)).await?;
    let len = u64::from(body.length());
    let header = read_header_in_memory(&body)?;
    let body = RefCell::new(Some((0, body)));
    let source = UrlSource { url: url.to_owned(), total: Some(len), ranges: false, body, stream: RefCell::default() };
    Ok((source, header))
}

/// The header of bytes already in JS memory, copying into wasm only the header (reads from a
/// `Uint8Array` are ready at once, so the future is driven here).
pub fn read_header_in_memory(bytes: &Uint8Array) -> Result<GgufHeader, JsError> {
    let source = Source::Bytes(bytes.clone());
    futures::executor::block_on(read_header_from(&source.reading(None))).map_err(JsError::from)
}
