//! The loader: a model's weights from any byte source onto a [`Compute`], tensor by tensor.
//!
//! Every front end loads through here: the browser (a `Uint8Array`, a `Blob`/`File`, the cached
//! file in OPFS, a URL by `Range` requests or one streamed body) and native tools and tests (a
//! file on disk, bytes in memory). A source only says how long the file is and reads a byte
//! range ([`ByteSource`]); what to read, in which order, in which pieces, when to report and when
//! to stop is decided once, here:
//!
//! - The header is read first ([`read_header`]): a prefix, then more for as long as the GGUF
//!   reader asks (`NeedMoreBytes`), at least doubling each time (a Gemma vocabulary makes a
//!   6.5 MB header), and never past [`MAX_HEADER_BYTES`].
//! - The tensors the model needs are read in file order ([`WeightsBuilder::needed`]), each one
//!   uploaded as soon as its bytes are in and the bytes dropped, so host memory peaks at one
//!   tensor.
//! - A tensor larger than [`PIECE_PERCENT`] of the upload is read in pieces of at most that much
//!   (one range request each in the browser), so progress moves within it.
//! - [`LoadEvents`] hears upload progress at least every 1% of the bytes and the compute's
//!   resident bytes at least every 5%, and is asked before every tensor and every piece whether
//!   to stop. On cancellation or any error everything uploaded so far is dropped before the
//!   error returns (on the CPU backend [`Compute::allocated_bytes`] is back where it was; the
//!   GPU backend's buffers go back to the device, its `allocated_bytes` only ever grows).

use std::fmt;
use std::ops::Range;

use crate::error::{Coded, Detail, ErrorCode};
use crate::gguf::{GgufError, GgufHeader};
use crate::model::ModelConfig;

use super::InferError;
use super::compute::Compute;
use super::transformer::{Model, Shape, Weights, WeightsBuilder};

/// The first header read asks for this much; most headers (not Gemma's 262k-token vocabulary)
/// fit.
pub const HEADER_PROBE: u64 = 1 << 20;

/// The largest read while uploading, as a percentage of the upload.
pub const PIECE_PERCENT: f64 = 0.5;

/// The smallest piece: below this a range request costs more than it tells.
pub const MIN_PIECE_BYTES: u64 = 64 << 10;

/// Where a GGUF file's bytes come from.
#[allow(async_fn_in_trait)] // awaited where it is made; no Send needed on wasm
pub trait ByteSource {
    /// Why a read failed (the front end turns it into its own error).
    type Error;

    /// The file's length in bytes, when the source knows it (a URL whose server sent no total
    /// does not).
    fn file_len(&self) -> Option<u64>;

    /// Exactly the bytes of `range`. A source that receives them in chunks (a network body)
    /// calls `received` with the bytes of `range` received so far as they arrive; one that has
    /// them at once need not call it.
    async fn read(&self, range: Range<u64>, received: &dyn Fn(u64)) -> Result<Vec<u8>, Self::Error>;
}

/// What a load reports and whom it asks whether to go on. Every method has a default that does
/// nothing; `()` is the silent, uncancellable load.
pub trait LoadEvents {
    /// `loaded` of `total` tensor bytes have arrived: at the start (0), at least every 1% of
    /// `total` (also within a large tensor), and at the end (`total`).
    fn upload_progress(&self, loaded: u64, total: u64) {
        let _ = (loaded, total);
    }

    /// The compute holds `bytes` now ([`Compute::allocated_bytes`], measured after each tensor):
    /// at the start, at least every 5% of the upload, and at the end. Comes before the
    /// [`Self::upload_progress`] of the same moment.
    fn resident(&self, bytes: u64) {
        let _ = bytes;
    }

    /// Whether to stop; asked before every tensor and every piece of a large one.
    fn cancelled(&self) -> bool {
        false
    }
}

impl LoadEvents for () {}

/// Why a load failed.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError<E> {
    /// The source could not deliver the bytes.
    Source(E),
    /// The file is not a valid GGUF (the header, or a tensor outside the file).
    Format(GgufError),
    /// The file is not a model this compute can run, or the compute refused an upload.
    Model(InferError),
    /// [`LoadEvents::cancelled`] said to stop.
    Cancelled,
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Source(e) => write!(f, "reading the model failed: {e}"),
            LoadError::Format(e) => write!(f, "not a valid GGUF model file: {e}"),
            LoadError::Model(e) => write!(f, "{e}"),
            LoadError::Cancelled => f.write_str("loading was cancelled"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for LoadError<E> {}

/// As an app sees it: the source's own error, the file's (`ModelFormatError`), the model's or the
/// compute's, each with its code and fields; a cancellation is a `CancelledError`.
impl<E: Coded> Coded for LoadError<E> {
    fn code(&self) -> ErrorCode {
        match self {
            LoadError::Source(e) => e.code(),
            LoadError::Format(e) => Coded::code(e),
            LoadError::Model(e) => e.code(),
            LoadError::Cancelled => ErrorCode::Aborted,
        }
    }

    fn message(&self) -> String {
        match self {
            LoadError::Source(e) => e.message(),
            LoadError::Format(e) => Coded::message(e),
            LoadError::Model(e) => e.message(),
            LoadError::Cancelled => "The operation was cancelled.".to_owned(),
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            LoadError::Source(e) => e.details(),
            LoadError::Format(e) => Coded::details(e),
            LoadError::Model(e) => e.details(),
            LoadError::Cancelled => Vec::new(),
        }
    }
}

impl<E> From<InferError> for LoadError<E> {
    fn from(e: InferError) -> Self {
        LoadError::Model(e)
    }
}

impl<E> From<GgufError> for LoadError<E> {
    fn from(e: GgufError) -> Self {
        LoadError::Format(e)
    }
}

/// The largest header [`read_header`] reads: 64 MiB. Gemma 3's header (a 262k-token vocabulary)
/// is 6.5 MB; a server that keeps claiming more (or a file whose header says so) is refused at
/// this size with [`GgufError::TooLarge`], whether or not the file's length is known, before the
/// prefix outgrows it.
pub const MAX_HEADER_BYTES: u64 = 64 << 20;

/// Parses a GGUF header from `prefix` (the file's first bytes, possibly none), reading more with
/// `more(range)` for as long as the reader asks (`NeedMoreBytes`), at least doubling what is held
/// and at least [`HEADER_PROBE`] each time, so a large header costs few reads, and never past
/// [`MAX_HEADER_BYTES`]. `len` is the file's length when known.
pub async fn read_header<E>(
    mut prefix: Vec<u8>,
    len: Option<u64>,
    mut more: impl AsyncFnMut(Range<u64>) -> Result<Vec<u8>, E>,
) -> Result<GgufHeader, LoadError<E>> {
    loop {
        match GgufHeader::parse_with_len(&prefix, len) {
            Err(GgufError::NeedMoreBytes { needed_at_least }) => {
                if needed_at_least > MAX_HEADER_BYTES {
                    return Err(LoadError::Format(GgufError::TooLarge {
                        what: "the header (bytes needed, at least)".into(),
                        value: needed_at_least,
                        cap: MAX_HEADER_BYTES,
                    }));
                }
                let start = prefix.len() as u64;
                let end = needed_at_least.max(start * 2).clamp(HEADER_PROBE, MAX_HEADER_BYTES);
                let end = len.map_or(end, |l| end.min(l));
                let truncated = |available| {
                    LoadError::Format(GgufError::Truncated {
                        what: "header".into(),
                        offset: start,
                        needed: needed_at_least.saturating_sub(start),
                        available,
                    })
                };
                if end <= start {
                    return Err(truncated(0));
                }
                let read = more(start..end).await.map_err(LoadError::Source)?;
                // A source that has nothing more (a body that ended early) would be asked for the
                // same range forever.
                if read.is_empty() {
                    return Err(truncated(0));
                }
                prefix.extend_from_slice(&read);
            }
            Err(e) => return Err(LoadError::Format(e)),
            Ok(header) => return Ok(header),
        }
    }
}

/// [`read_header`] from the start of `source`.
pub async fn read_header_from<S: ByteSource + ?Sized>(source: &S) -> Result<GgufHeader, LoadError<S::Error>> {
    read_header(Vec::new(), source.file_len(), async |r: Range<u64>| source.read(r, &|_| {}).await).await
}

/// Upload progress with the cadence [`LoadEvents`] promises. Bytes arrive in indivisible pieces
/// of up to [`PIECE_PERCENT`], so a report goes out once half a percent has passed: then no two
/// reports are more than 1% apart.
struct Cadence<'a, L: LoadEvents + ?Sized> {
    events: &'a L,
    total: u64,
    last_percent: std::cell::Cell<f64>,
    last_resident: std::cell::Cell<f64>,
    /// Resident bytes as the compute last reported them (updated after each tensor).
    resident: std::cell::Cell<u64>,
}

impl<L: LoadEvents + ?Sized> Cadence<'_, L> {
    fn report(&self, done: u64) {
        let percent = done as f64 * 100.0 / self.total.max(1) as f64;
        let edge = done == 0 || done == self.total;
        // Resident bytes at least every 5% (the same figure while a large tensor arrives).
        if percent - self.last_resident.get() >= 2.5 || edge {
            self.last_resident.set(percent);
            self.events.resident(self.resident.get());
        }
        if percent - self.last_percent.get() < 0.5 && !edge {
            return;
        }
        self.last_percent.set(percent);
        self.events.upload_progress(done, self.total);
    }
}

/// Streams the weights `cfg` needs from `source` onto `compute` (see the module docs). On any
/// error or cancellation what was uploaded is dropped before this returns.
pub async fn load_weights_from<C, S, L>(
    compute: &C,
    cfg: &ModelConfig,
    header: &GgufHeader,
    source: &S,
    events: &L,
) -> Result<Weights<C>, LoadError<S::Error>>
where
    C: Compute,
    S: ByteSource + ?Sized,
    L: LoadEvents + ?Sized,
{
    let mut builder = WeightsBuilder::new(cfg, header)?;
    let total = builder.needed_bytes();
    let piece = ((total as f64 * PIECE_PERCENT / 100.0) as u64).max(MIN_PIECE_BYTES);
    let cadence = Cadence {
        events,
        total,
        last_percent: (-1.0).into(),
        last_resident: (-5.0).into(),
        resident: compute.allocated_bytes().into(),
    };
    cadence.report(0);
    let mut done = 0u64;
    for info in builder.needed().to_vec() {
        let range = header.tensor_range(&info.name)?;
        if let Some(len) = source.file_len()
            && range.end > len
        {
            return Err(LoadError::Format(GgufError::TensorOutOfBounds {
                tensor: info.name.clone(),
                end: range.end,
                file_len: len,
            }));
        }
        // The tensor is held whole before its upload: on wasm32 it must fit the address space.
        let size = usize::try_from(range.end - range.start).map_err(|_| GgufError::TooLarge {
            what: format!("tensor {} (bytes)", info.name),
            value: range.end - range.start,
            cap: usize::MAX as u64,
        })?;
        let mut bytes = Vec::new();
        let mut at = range.start;
        while at < range.end {
            if events.cancelled() {
                return Err(LoadError::Cancelled);
            }
            let end = range.end.min(at + piece);
            // Bytes count as they arrive, within a piece too.
            let before = done + (at - range.start);
            let read = source.read(at..end, &|n| cadence.report(before + n.min(end - at))).await;
            let read = read.map_err(LoadError::Source)?;
            if read.len() as u64 != end - at {
                return Err(LoadError::Format(GgufError::Truncated {
                    what: format!("tensor {}", info.name),
                    offset: at,
                    needed: end - at,
                    available: read.len() as u64,
                }));
            }
            if bytes.is_empty() {
                bytes = read;
                bytes.reserve_exact(size - bytes.len());
            } else {
                bytes.extend_from_slice(&read);
            }
            cadence.report(done + (end - range.start));
            at = end;
        }
        builder.add(compute, &info, &bytes)?;
        done += range.end - range.start;
        cadence.resident.set(compute.allocated_bytes());
        cadence.report(done);
    }
    Ok(builder.finish()?)
}

/// [`load_weights_from`], then the model with its KV cache and buffers for `shape`.
pub async fn load_model<C, S, L>(
    compute: C,
    cfg: &ModelConfig,
    header: &GgufHeader,
    shape: Shape,
    source: &S,
    events: &L,
) -> Result<Model<C>, LoadError<S::Error>>
where
    C: Compute,
    S: ByteSource + ?Sized,
    L: LoadEvents + ?Sized,
{
    let weights = load_weights_from(&compute, cfg, header, source, events).await?;
    Ok(Model::new(compute, cfg.clone(), weights, shape)?)
}

/// The most elements [`dequantize_tensor`] decodes at once: 1 GiB of f32. A larger result could
/// not be held in wasm memory (the allocation would abort the module).
pub const MAX_DEQUANTIZE_ELEMENTS: u64 = 1 << 28;

/// The bytes of tensor `name` in its block format, read from `source`.
pub async fn read_tensor<S: ByteSource + ?Sized>(
    header: &GgufHeader,
    source: &S,
    name: &str,
) -> Result<Vec<u8>, LoadError<S::Error>> {
    let range = header.tensor_range(name)?;
    source.read(range, &|_| {}).await.map_err(LoadError::Source)
}

/// Tensor `name` decoded to f32 by the reference decoders (the GPU reads the blocks directly).
/// A tensor of more than [`MAX_DEQUANTIZE_ELEMENTS`] is refused before anything is read.
pub async fn dequantize_tensor<S: ByteSource + ?Sized>(
    header: &GgufHeader,
    source: &S,
    name: &str,
) -> Result<Vec<f32>, LoadError<S::Error>> {
    let info = header.tensor(name).ok_or_else(|| GgufError::MissingTensor(name.to_owned()))?;
    if info.n_elements > MAX_DEQUANTIZE_ELEMENTS {
        return Err(InferError::TooManyElements { tensor: info.name.clone(), elements: info.n_elements }.into());
    }
    let bytes = read_tensor(header, source, name).await?;
    Ok(crate::gguf::dequantize_to_vec(info.ggml_type, &bytes, info.n_elements as usize)?)
}

/// A read outside the bytes a source holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange {
    pub range: Range<u64>,
    pub len: u64,
}

impl fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes {}..{} are outside the {}-byte file", self.range.start, self.range.end, self.len)
    }
}

impl std::error::Error for OutOfRange {}

/// A whole file in memory.
impl ByteSource for [u8] {
    type Error = OutOfRange;

    fn file_len(&self) -> Option<u64> {
        Some(<[u8]>::len(self) as u64)
    }

    async fn read(&self, range: Range<u64>, _received: &dyn Fn(u64)) -> Result<Vec<u8>, OutOfRange> {
        let len = <[u8]>::len(self) as u64;
        if range.start > range.end || range.end > len {
            return Err(OutOfRange { range, len });
        }
        Ok(self[range.start as usize..range.end as usize].to_vec())
    }
}

/// A file on disk, read range by range (native tools and tests).
#[derive(Debug)]
pub struct FileSource {
    file: std::sync::Mutex<std::fs::File>,
    len: u64,
}

impl FileSource {
    pub fn open(path: impl AsRef<std::path::Path>) -> std::io::Result<FileSource> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        Ok(FileSource { file: std::sync::Mutex::new(file), len })
    }
}

impl ByteSource for FileSource {
    type Error = std::io::Error;

    fn file_len(&self) -> Option<u64> {
        Some(self.len)
    }

    async fn read(&self, range: Range<u64>, _received: &dyn Fn(u64)) -> Result<Vec<u8>, std::io::Error> {
        use std::io::{Read, Seek, SeekFrom};
        if range.start > range.end || range.end > self.len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                OutOfRange { range, len: self.len }.to_string(),
            ));
        }
        let mut file = self.file.lock().map_err(|_| std::io::Error::other("the file's lock is poisoned"))?;
        file.seek(SeekFrom::Start(range.start))?;
        let mut bytes = vec![0; (range.end - range.start) as usize];
        file.read_exact(&mut bytes)?;
        Ok(bytes)
    }
}

/// Uploads every tensor of an in-memory GGUF file: [`load_weights_from`] over the bytes, silent
/// and uncancellable (native tools and tests).
pub fn load_weights<C: Compute>(
    compute: &C,
    cfg: &ModelConfig,
    header: &GgufHeader,
    file: &[u8],
) -> Result<Weights<C>, InferError> {
    // Reads from memory are ready at once: the future completes on its first poll.
    match futures::executor::block_on(load_weights_from(compute, cfg, header, file, &())) {
        Ok(weights) => Ok(weights),
        Err(LoadError::Model(e)) => Err(e),
        Err(LoadError::Format(e)) => Err(InferError::Gguf(e)),
        // `load_weights_from` checks every range against the length first.
        Err(LoadError::Source(OutOfRange { range, len })) => Err(InferError::Gguf(GgufError::Truncated {
            what: "tensor data".into(),
            offset: range.start,
            needed: range.end - range.start,
            available: len.saturating_sub(range.start),
        })),
        Err(LoadError::Cancelled) => Err(InferError::Cancelled),
    }
}

#[cfg(test)]
mod tests;
