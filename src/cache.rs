//! The model cache's policy: when a cached model file is reused, when it is downloaded, how
//! its bytes are checked, and what is deleted when they are wrong. Plain Rust over a small
//! [`CacheStorage`] trait; the browser implements it over the Origin Private File System
//! (`web/cache.rs`), the tests in memory.
//!
//! # Integrity
//! Every file is checked against a SHA-256 before anything reads it as a model:
//! - **Storing** ([`ModelCache::store`]): the download streams chunk by chunk into the storage's
//!   writer and through a [`Sha256`] at once (no whole-file buffer). The writer's bytes become
//!   the file's only on [`CacheWriter::commit`], and that happens only when the body is complete
//!   and its digest equals the catalog's `sha256` (when the entry has one). Then the digest and
//!   the size are recorded beside the file, in `<file>.sha256` ([`record_name`]). An entry
//!   without a digest is hashed the same way and its digest recorded (and listed).
//! - **Reusing** ([`ModelCache::reuse`]): a cached file counts only with its record, whose
//!   digest must be the catalog's; the file is then read once through the hasher and its size
//!   and digest compared with the record. Reading it is what makes detection certain: a record
//!   says what the file *was*, only its bytes say what it *is* (a truncated, overwritten or
//!   bit-rotten file has the record of the good one). At the wasm hasher's ~200 MB/s that is
//!   about half a second per 100 MB, paid once per page: the web layer keeps the verified file
//!   (a `File` snapshot, which the browser refuses to read once the file on disk changes).
//! - **Mismatch**: the file and its record are deleted and the operation fails with a
//!   [`CacheError::Integrity`] naming the file, the expected and the actual digest and sizes;
//!   nothing was read as a model. The next load downloads the file again.
//!
//! # Space
//! Before a download writes anything, the storage's free space ([`CacheStorage::free_bytes`],
//! the browser's `navigator.storage.estimate()`) is compared with the file's size: too little is
//! a [`CacheError::Quota`] and no file is created. A write refused for quota midway, like every
//! failed or cancelled download, discards the writer and removes the file: the cache never holds
//! a partial file.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Coded, Detail, ErrorCode};
use crate::manager::CatalogEntry;
use crate::source::{SourceError, cache_file_name, cache_key_of, check_complete};

/// The suffix of the record beside each cached file.
pub const RECORD_SUFFIX: &str = ".sha256";

/// How much of a cached file one read passes to the hasher when it is verified.
pub const VERIFY_CHUNK: u64 = 8 << 20;

/// The record of cached file `name`.
pub fn record_name(name: &str) -> String {
    format!("{name}{RECORD_SUFFIX}")
}

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Why the storage failed.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageError {
    /// The storage refused for lack of space (the browser's `QuotaExceededError`).
    pub quota: bool,
    pub detail: String,
}

impl StorageError {
    pub fn other(detail: impl Into<String>) -> Self {
        StorageError { quota: false, detail: detail.into() }
    }

    pub fn quota(detail: impl Into<String>) -> Self {
        StorageError { quota: true, detail: detail.into() }
    }
}

/// Where cached files live: a flat folder of named files.
#[allow(async_fn_in_trait)] // awaited where it is made; no Send needed on wasm
pub trait CacheStorage {
    /// A stored file as a loader reads it (the browser's `File`).
    type File: Clone;
    /// A file being written.
    type Writer: CacheWriter;

    /// The file `name`, if there is one.
    async fn file(&self, name: &str) -> Result<Option<Self::File>, StorageError>;
    /// The size of `file` in bytes.
    fn len(&self, file: &Self::File) -> u64;
    /// The bytes of `range` of `file`.
    async fn read(&self, file: &Self::File, range: Range<u64>) -> Result<Vec<u8>, StorageError>;
    /// The whole of small file `name` as text, if there is one.
    async fn read_text(&self, name: &str) -> Result<Option<String>, StorageError>;
    /// Replaces small file `name` with `text`.
    async fn write_text(&self, name: &str, text: &str) -> Result<(), StorageError>;
    /// A writer for file `name`, whose bytes replace the file's on [`CacheWriter::commit`].
    async fn create(&self, name: &str) -> Result<Self::Writer, StorageError>;
    /// Removes file `name`; a missing file is no error.
    async fn remove(&self, name: &str) -> Result<(), StorageError>;
    /// The names of every file.
    async fn names(&self) -> Result<Vec<String>, StorageError>;
    /// Bytes the storage can still take, when it says.
    async fn free_bytes(&self) -> Option<u64>;
}

/// A file being written: nothing reaches the file before [`CacheWriter::commit`].
#[allow(async_fn_in_trait)]
pub trait CacheWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError>;
    /// Makes the written bytes the file's.
    async fn commit(self) -> Result<(), StorageError>;
    /// Drops the written bytes; the file keeps what it had.
    async fn discard(self);
}

/// A download's body, chunk by chunk.
#[allow(async_fn_in_trait)]
pub trait Body {
    /// The length the server announced.
    fn announced_len(&self) -> Option<u64>;
    /// The next chunk; `None` at the end.
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError>;
    /// Stops the download (nothing more will be read).
    fn cancel(&mut self);
}

/// A cached file that passed its check.
#[derive(Debug, Clone, PartialEq)]
pub struct Cached<F> {
    pub file: F,
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// A cached model file as `cachedModels()` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedModel {
    pub key: String,
    pub file: String,
    pub bytes: u64,
    /// The SHA-256 recorded when the file was stored (checked on every reuse); absent for a
    /// file without a record, which is never reused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What the record beside a cached file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    sha256: String,
    bytes: u64,
}

/// Why the cache could not give or take a file.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheError {
    /// The bytes are not the ones expected (a corrupted or truncated cached file, or a download
    /// that differs from the catalog's digest). The file was deleted.
    Integrity { file: String, expected_sha256: String, actual_sha256: String, expected_bytes: u64, actual_bytes: u64 },
    /// The storage has no room for the file; nothing of it was kept.
    Quota { file: String, needed: Option<u64>, available: Option<u64> },
    /// Writing or reading the cache failed otherwise; nothing of the file was kept.
    Storage { file: String, detail: String },
    /// The download failed or was cancelled.
    Source(SourceError),
    /// Cancelled while a cached file was being checked.
    Cancelled { file: String },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Integrity { file, expected_sha256, actual_sha256, expected_bytes, actual_bytes } => {
                write!(f, "{file} failed its integrity check: expected SHA-256 {expected_sha256}")?;
                write!(f, " ({expected_bytes} bytes), found {actual_sha256} ({actual_bytes} bytes).")?;
                write!(f, " The file was deleted; loading the model again downloads it anew.")
            }
            CacheError::Quota { file, needed, available } => {
                write!(f, "The browser's storage has no room for {file}")?;
                match (needed, available) {
                    (Some(n), Some(a)) => write!(f, " ({n} bytes needed, {a} available)")?,
                    (Some(n), None) => write!(f, " ({n} bytes needed)")?,
                    _ => {}
                }
                write!(f, ". Free space with clearCache(), or create the manager with cache: false.")
            }
            CacheError::Storage { file, detail } => {
                write!(f, "The browser's model cache failed for {file}: {detail}")
            }
            CacheError::Source(e) => e.fmt(f),
            CacheError::Cancelled { file } => write!(f, "Checking the cached {file} was cancelled."),
        }
    }
}

impl std::error::Error for CacheError {}

impl Coded for CacheError {
    fn code(&self) -> ErrorCode {
        match self {
            CacheError::Integrity { .. } => ErrorCode::IntegrityMismatch,
            CacheError::Quota { .. } => ErrorCode::StorageQuota,
            CacheError::Storage { .. } => ErrorCode::CacheWriteFailed,
            CacheError::Source(e) => e.code(),
            CacheError::Cancelled { .. } => ErrorCode::Aborted,
        }
    }

    fn details(&self) -> Vec<(&'static str, Detail)> {
        match self {
            CacheError::Integrity { file, expected_sha256, actual_sha256, expected_bytes, actual_bytes } => vec![
                ("file", file.as_str().into()),
                ("expectedSha256", expected_sha256.as_str().into()),
                ("actualSha256", actual_sha256.as_str().into()),
                ("expectedBytes", (*expected_bytes).into()),
                ("actualBytes", (*actual_bytes).into()),
            ],
            CacheError::Quota { file, needed, available } => {
                let mut d = vec![("file", file.as_str().into())];
                d.extend(needed.map(|n| ("requiredBytes", n.into())));
                d.extend(available.map(|n| ("availableBytes", n.into())));
                d
            }
            CacheError::Storage { file, .. } | CacheError::Cancelled { file } => vec![("file", file.as_str().into())],
            CacheError::Source(e) => e.details(),
        }
    }
}

impl From<SourceError> for CacheError {
    fn from(e: SourceError) -> Self {
        CacheError::Source(e)
    }
}

/// The model cache over `storage`. See the [module docs](self).
#[derive(Debug)]
pub struct ModelCache<S> {
    storage: S,
}

impl<S: CacheStorage> ModelCache<S> {
    pub fn new(storage: S) -> Self {
        ModelCache { storage }
    }

    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// `entry`'s cached file, checked: `None` when there is none to reuse (no file, or a file
    /// without its record: an unfinished entry, removed here). A file whose record disagrees with
    /// the catalog, or whose bytes disagree with its record, is deleted: an
    /// [`CacheError::Integrity`]. `cancelled` is asked between reads.
    pub async fn reuse(
        &self,
        entry: &CatalogEntry,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<Cached<S::File>>, CacheError> {
        let name = cache_file_name(entry);
        // A storage that cannot say is a cache without the file: the caller downloads.
        let Ok(Some(file)) = self.storage.file(&name).await else { return Ok(None) };
        let record = match self.storage.read_text(&record_name(&name)).await {
            Ok(Some(text)) => serde_json::from_str::<Record>(&text).ok(),
            _ => None,
        };
        let Some(record) = record else {
            // Stored before its digest was recorded (an interrupted store or an older cache):
            // never checked, so never used.
            self.delete(&name).await;
            return Ok(None);
        };
        let actual_bytes = self.storage.len(&file);
        let expected_sha256 = entry.sha256.clone().unwrap_or_else(|| record.sha256.clone());
        let actual_sha256 = match self.hash(&name, &file, actual_bytes, cancelled).await {
            Ok(digest) => digest,
            Err(e @ CacheError::Cancelled { .. }) => return Err(e),
            Err(e) => {
                self.delete(&name).await;
                return Err(e);
            }
        };
        let intact = record.sha256 == expected_sha256 && actual_sha256 == expected_sha256;
        if !intact || actual_bytes != record.bytes {
            self.delete(&name).await;
            return Err(CacheError::Integrity {
                file: name,
                expected_sha256,
                actual_sha256,
                expected_bytes: record.bytes,
                actual_bytes,
            });
        }
        Ok(Some(Cached { file, bytes: actual_bytes, sha256: actual_sha256 }))
    }

    /// Streams `body` (the download of `entry`'s `url`) into the cache, hashing it on the way,
    /// and returns the stored file once its digest is the catalog's and recorded. `progress`
    /// hears the bytes received and the announced total. On any failure nothing is kept.
    pub async fn store<B: Body>(
        &self,
        entry: &CatalogEntry,
        url: &str,
        mut body: B,
        progress: &dyn Fn(u64, Option<u64>),
    ) -> Result<Cached<S::File>, CacheError> {
        let name = cache_file_name(entry);
        let total = body.announced_len();
        let needed = total.or((entry.file_bytes > 0).then_some(entry.file_bytes));
        if let Some(n) = needed
            && let Some(free) = self.storage.free_bytes().await
            && n > free
        {
            body.cancel();
            return Err(CacheError::Quota { file: name, needed, available: Some(free) });
        }
        // An old record must not vouch for the bytes about to be written.
        let _ = self.storage.remove(&record_name(&name)).await;
        let storage_error = |e: StorageError, name: &str| match e.quota {
            true => CacheError::Quota { file: name.to_owned(), needed, available: None },
            false => CacheError::Storage { file: name.to_owned(), detail: e.detail },
        };
        let mut writer = match self.storage.create(&name).await {
            Ok(w) => w,
            Err(e) => {
                body.cancel();
                return Err(storage_error(e, &name));
            }
        };
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let streamed: Result<(), CacheError> = async {
            while let Some(chunk) = body.next_chunk().await? {
                received += chunk.len() as u64;
                if total.is_some_and(|t| received > t) {
                    body.cancel();
                    return Err(SourceError::overlong(url, total.unwrap_or(0)).into());
                }
                hasher.update(&chunk);
                if let Err(e) = writer.write(&chunk).await {
                    body.cancel();
                    return Err(storage_error(e, &name));
                }
                progress(received, total);
            }
            Ok(check_complete(url, total, received)?)
        }
        .await;
        let actual_sha256 = hex(&hasher.finalize());
        let checked = streamed.and_then(|()| match &entry.sha256 {
            Some(expected) if *expected != actual_sha256 => Err(CacheError::Integrity {
                file: name.clone(),
                expected_sha256: expected.clone(),
                actual_sha256: actual_sha256.clone(),
                expected_bytes: needed.unwrap_or(received),
                actual_bytes: received,
            }),
            _ => Ok(()),
        });
        if let Err(e) = checked {
            writer.discard().await;
            self.delete(&name).await;
            return Err(e);
        }
        let record = Record { sha256: actual_sha256.clone(), bytes: received };
        let kept = async {
            writer.commit().await?;
            let text = serde_json::to_string(&record).map_err(|e| StorageError::other(e.to_string()))?;
            self.storage.write_text(&record_name(&name), &text).await?;
            self.storage.file(&name).await?.ok_or_else(|| StorageError::other("the stored file is gone"))
        }
        .await;
        match kept {
            Ok(file) => Ok(Cached { file, bytes: received, sha256: actual_sha256 }),
            Err(e) => {
                self.delete(&name).await;
                Err(storage_error(e, &name))
            }
        }
    }

    /// The cached model files (records are not listed on their own), with their recorded
    /// digests.
    pub async fn list(&self) -> Vec<CachedModel> {
        let names = self.storage.names().await.unwrap_or_default();
        let mut out = Vec::new();
        for name in names.iter().filter(|n| !n.ends_with(RECORD_SUFFIX)) {
            let Ok(Some(file)) = self.storage.file(name).await else { continue };
            let sha256 = match self.storage.read_text(&record_name(name)).await {
                Ok(Some(text)) => serde_json::from_str::<Record>(&text).ok().map(|r| r.sha256),
                _ => None,
            };
            out.push(CachedModel {
                key: cache_key_of(name).to_owned(),
                file: name.clone(),
                bytes: self.storage.len(&file),
                sha256,
            });
        }
        out
    }

    /// Removes the cached files of `key` (every key's when `None`) and their records; returns
    /// how many model files went.
    pub async fn remove(&self, key: Option<&str>) -> u32 {
        let names = self.storage.names().await.unwrap_or_default();
        let mut removed = 0;
        for name in names {
            let file = name.strip_suffix(RECORD_SUFFIX).unwrap_or(&name);
            if key.is_some_and(|k| cache_key_of(file) != k) {
                continue;
            }
            if self.storage.remove(&name).await.is_ok() && file == name {
                removed += 1;
            }
        }
        removed
    }

    /// Removes file `name` and its record (best effort: a failure leaves a file no record
    /// vouches for, which is never reused).
    async fn delete(&self, name: &str) {
        let _ = self.storage.remove(&record_name(name)).await;
        let _ = self.storage.remove(name).await;
    }

    /// The SHA-256 of `file`'s `len` bytes, read [`VERIFY_CHUNK`] at a time.
    async fn hash(
        &self,
        name: &str,
        file: &S::File,
        len: u64,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<String, CacheError> {
        let mut hasher = Sha256::new();
        let mut at = 0;
        while at < len {
            if cancelled() {
                return Err(CacheError::Cancelled { file: name.to_owned() });
            }
            let end = len.min(at + VERIFY_CHUNK);
            let bytes = self
                .storage
                .read(file, at..end)
                .await
                .map_err(|e| CacheError::Storage { file: name.to_owned(), detail: e.detail })?;
            if bytes.len() as u64 != end - at {
                return Err(CacheError::Storage {
                    file: name.to_owned(),
                    detail: format!("a read of bytes {at}..{end} gave {} bytes", bytes.len()),
                });
            }
            hasher.update(&bytes);
            at = end;
        }
        Ok(hex(&hasher.finalize()))
    }
}

#[cfg(test)]
mod tests;
