//! Where GGUF bytes come from in the browser: a buffer the page already has, a
//! `Blob`/`File` the user picked, or a URL read with `fetch`.
//!
//! A URL is opened header first: a `Range` request for the first bytes, more
//! ranges while the header asks for them, and later one range per read. When the
//! server ignores `Range` (answers 200), the body is streamed once into a single
//! JS buffer of the announced size, with progress, and every read is served from
//! it — the file is never held twice.
//!
//! [`Reading`] is the core loader's [`ByteSource`] over any of them; the header loop and the
//! upload are the core's ([`crate::infer::load`]), and so are the errors, the progress throttle,
//! the header formats and the length checks ([`crate::source`]).

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
use crate::source::{MAX_BUFFER, Throttle, check_complete, content_length, content_range_total, range_header};
use crate::status::{Phase, Progress, StatusStream};
use std::rc::Rc;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(input: &str, init: &RequestInit) -> Promise;
}

/// Reports byte progress to a JS callback as often as the core's [`Throttle`] admits (once per
/// percent, or per MiB when the total is unknown, plus the first and the last).
pub struct ProgressReporter {
    callback: Option<Function>,
    /// Also (or instead) `progress` events on a status stream, tagged with a model key.
    status: Option<(Rc<StatusStream>, String)>,
    throttle: RefCell<Throttle>,
}

impl ProgressReporter {
    pub fn new(callback: Option<Function>) -> Self {
        ProgressReporter { callback, status: None, throttle: RefCell::default() }
    }

    /// Reports as `progress` events (phase `download`) on `status`, for `key`.
    pub fn to_status(status: Rc<StatusStream>, key: &str) -> Self {
        ProgressReporter { callback: None, status: Some((status, key.to_owned())), throttle: RefCell::default() }
    }

    pub fn report(&self, loaded: u64, total: Option<u64>) {
        if self.callback.is_none() && self.status.is_none() {
            return;
        }
        if !self.throttle.borrow_mut().admit(loaded, total) {
            return;
        }
        let progress = Progress::new(Phase::Download, loaded, total);
        if let Some((status, key)) = &self.status {
            status.progress(progress.clone(), Some(key));
        }
        let Some(callback) = &self.callback else { return };
        if let Ok(value) = serde_wasm_bindgen::to_value(&progress)
            && let Err(e) = callback.call1(&JsValue::UNDEFINED, &value)
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
        if let Some(len) = self.len()
            && (range.end > len || range.start > range.end)
        {
            return Err(SourceError::Read {
                detail: format!("bytes {}..{} are outside the {len}-byte file", range.start, range.end),
            });
        }
        match self {
            Source::Bytes(b) => Ok(b.subarray(range.start as u32, range.end as u32).to_vec()),
            Source::Blob(b) => {
                let slice = b
                    .slice_with_f64_and_f64(range.start as f64, range.end as f64)
                    .map_err(|e| SourceError::Read { detail: js_message(&e) })?;
                let buffer = JsFuture::from(slice.array_buffer())
                    .await
                    .map_err(|e| SourceError::Read { detail: js_message(&e) })?;
                Ok(Uint8Array::new(&buffer).to_vec())
            }
            Source::Url(u) => {
                if let Some((start, body)) = &*u.body.borrow()
                    && range.start >= *start
                    && range.end <= start + u64::from(body.length())
                {
                    return Ok(body.subarray((range.start - start) as u32, (range.end - start) as u32).to_vec());
                }
                Ok(u.fetch_range(range, signal, received).await?.to_vec())
            }
        }
    }

    /// The core loader's view of this source, reads cancelled by `signal`.
    pub fn reading<'a>(&'a self, signal: Option<&'a AbortSignal>) -> Reading<'a> {
        Reading { source: self, signal }
    }
}

/// A [`Source`] with the `AbortSignal` its reads obey: what the core loader reads from.
pub struct Reading<'a> {
    source: &'a Source,
    signal: Option<&'a AbortSignal>,
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

fn js_message(e: &JsValue) -> String {
    Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn is_abort(e: &JsValue, signal: Option<&AbortSignal>) -> bool {
    signal.is_some_and(AbortSignal::aborted)
        || Reflect::get(e, &JsValue::from_str("name")).ok().and_then(|n| n.as_string()).as_deref() == Some("AbortError")
}

/// `fetch(url, { headers: { Range }, signal })`.
async fn fetch(url: &str, range: Option<Range<u64>>, signal: Option<&AbortSignal>) -> Result<Response, SourceError> {
    let init = RequestInit::new();
    if let Some(r) = &range {
        let headers = js_sys::Object::new();
        let _ = Reflect::set(&headers, &JsValue::from_str("Range"), &JsValue::from_str(&range_header(r)));
        init.set_headers(&headers);
    }
    if let Some(s) = signal {
        init.set_signal(Some(s));
    }
    let response = JsFuture::from(global_fetch(url, &init)).await.map_err(|e| {
        if is_abort(&e, signal) {
            SourceError::Aborted { url: url.to_owned() }
        } else {
            SourceError::Network { url: url.to_owned(), detail: js_message(&e) }
        }
    })?;
    let response: Response = response.unchecked_into();
    let status = response.status();
    if !(200..300).contains(&status) {
        return Err(SourceError::Http { url: url.to_owned(), status, status_text: response.status_text() });
    }
    Ok(response)
}

/// `fetch(url)` for the whole body (no Range), with its `Content-Length` when the server sends
/// one: the model cache streams it to disk.
pub async fn fetch_whole(url: &str, signal: Option<&AbortSignal>) -> Result<(Response, Option<u64>), SourceError> {
    let response = fetch(url, None, signal).await?;
    let total = header(&response, "Content-Length").as_deref().and_then(content_length);
    Ok((response, total))
}

fn header(response: &Response, name: &str) -> Option<String> {
    response.headers().get(name).ok().flatten()
}

/// A zeroed `Uint8Array` of `n` bytes, or the browser's refusal as an error: an allocation this
/// large fails when memory is short, and the constructor's `RangeError` must not unwind through
/// wasm (`Reflect.construct` catches it).
fn zeroed(url: &str, n: u64) -> Result<Uint8Array, SourceError> {
    let class = Reflect::get(&js_sys::global(), &JsValue::from_str("Uint8Array"))
        .map_err(|e| SourceError::Read { detail: js_message(&e) })?;
    Reflect::construct(class.unchecked_ref::<js_sys::Function>(), &js_sys::Array::of1(&JsValue::from_f64(n as f64)))
        .map(JsCast::unchecked_into)
        .map_err(|_| SourceError::too_large(url, Some(n)))
}

/// Reads a response body chunk by chunk into one buffer (of the size, when known), calling
/// `received` with the bytes received so far.
async fn read_body(
    url: &str,
    response: &Response,
    expected: Option<u64>,
    signal: Option<&AbortSignal>,
    received_so_far: &dyn Fn(u64),
) -> Result<Uint8Array, SourceError> {
    let Some(body) = response.body() else {
        return Ok(Uint8Array::new_with_length(0));
    };
    // One JS buffer holds the body; browsers cap an ArrayBuffer below 4 GiB.
    if let Some(n) = expected.filter(|&n| n > MAX_BUFFER) {
        let _ = body.cancel();
        return Err(SourceError::too_large(url, Some(n)));
    }
    let fixed = match expected.map(|n| zeroed(url, n)).transpose() {
        Ok(fixed) => fixed,
        Err(e) => {
            let _ = body.cancel();
            return Err(e);
        }
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut chunks: Vec<Uint8Array> = Vec::new();
    let mut received: u64 = 0;
    loop {
        let step = JsFuture::from(reader.read()).await.map_err(|e| {
            if is_abort(&e, signal) {
                SourceError::Aborted { url: url.to_owned() }
            } else {
                SourceError::Truncated { url: url.to_owned(), expected: expected.unwrap_or(0), received }
            }
        })?;
        let done = Reflect::get(&step, &JsValue::from_str("done")).ok().and_then(|d| d.as_bool()).unwrap_or(true);
        if done {
            break;
        }
        let chunk: Uint8Array = Reflect::get(&step, &JsValue::from_str("value"))
            .map_err(|e| SourceError::Read { detail: js_message(&e) })?
            .unchecked_into();
        let n = u64::from(chunk.length());
        match &fixed {
            Some(buffer) => {
                if received + n > u64::from(buffer.length()) {
                    let _ = reader.cancel();
                    return Err(SourceError::overlong(url, u64::from(buffer.length())));
                }
                buffer.set(&chunk, received as u32);
            }
            None => chunks.push(chunk),
        }
        received += n;
        if received > MAX_BUFFER {
            let _ = reader.cancel();
            return Err(SourceError::too_large(url, None));
        }
        received_so_far(received);
    }
    check_complete(url, expected, received)?;
    Ok(match fixed {
        Some(buffer) => buffer,
        None => {
            // Length unknown: join the chunks once at the end.
            let joined = Uint8Array::new_with_length(received as u32);
            let mut at = 0;
            for c in chunks {
                joined.set(&c, at);
                at += c.length();
            }
            joined
        }
    })
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
            return Err(SourceError::Read { detail: format!("{} does not support range requests", self.url) });
        }
        let response = fetch(&self.url, Some(range.clone()), signal).await?;
        if response.status() != 206 {
            return Err(SourceError::Read {
                detail: format!("{} stopped honouring range requests (HTTP {})", self.url, response.status()),
            });
        }
        read_body(&self.url, &response, Some(range.end - range.start), signal, received).await
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
            if let Some(p) = progress {
                p.report(self.total.unwrap_or(0), self.total);
            }
            return Ok(());
        }
        let total = self.total.ok_or_else(|| SourceError::Read { detail: "unknown file size".into() })?;
        let report = |n: u64| {
            if let Some(p) = progress {
                p.report(start + n, Some(total));
            }
        };
        let bytes = self.fetch_range(start..total, signal, &report).await?;
        *self.body.borrow_mut() = Some((start, bytes));
        Ok(())
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
        let source = UrlSource { url: url.to_owned(), total, ranges: true, body: RefCell::new(None) };
        let header = read_header(first, total, async |range: Range<u64>| {
            let more = source.fetch_range(range.clone(), signal, &|_| {}).await?;
            if let Some(p) = progress {
                p.report(range.end, total);
            }
            Ok::<_, SourceError>(more.to_vec())
        })
        .await
        .map_err(JsError::from)?;
        return Ok((source, header));
    }
    // A 200: the server ignored Range and sends the whole file.
    let total = header(&response, "Content-Length").as_deref().and_then(content_length);
    let report = |n: u64| {
        if let Some(p) = progress {
            p.report(n, total);
        }
    };
    let body = read_body(url, &response, total, signal, &report).await?;
    let len = u64::from(body.length());
    let header = read_header_in_memory(&body)?;
    let source =
        UrlSource { url: url.to_owned(), total: Some(len), ranges: false, body: RefCell::new(Some((0, body))) };
    Ok((source, header))
}

/// The header of bytes already in JS memory, copying into wasm only the header (reads from a
/// `Uint8Array` are ready at once, so the future is driven here).
pub fn read_header_in_memory(bytes: &Uint8Array) -> Result<GgufHeader, JsError> {
    let source = Source::Bytes(bytes.clone());
    futures::executor::block_on(read_header_from(&source.reading(None))).map_err(JsError::from)
}
