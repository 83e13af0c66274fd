//! The browser's model cache: whole GGUF files in the Origin Private File System
//! (`navigator.storage.getDirectory()`, folder `hearth-models`), so a model is downloaded once
//! per origin and later loads read it from disk (the `cache` progress phase).
//!
//! The policy is the core's ([`crate::cache`]): what is reused, downloaded, checked against its
//! SHA-256 and deleted. Here are its [`CacheStorage`] over OPFS and its [`Body`] over a `fetch`
//! response. A file is written through a `FileSystemWritableFileStream`, whose contents replace
//! the file's only when the stream closes, so a download that fails, is aborted or hashes wrong
//! is never seen as a file. The free space is `navigator.storage.estimate()`'s quota less its
//! usage. The OPFS calls go through `Reflect` (web-sys gates these interfaces behind unstable
//! APIs).

use std::ops::Range;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, ReadableStreamDefaultReader};

use crate::cache::{self, Body, CacheStorage, CacheWriter, CachedModel, StorageError};
use crate::manager::CatalogEntry;

use super::error::JsError;
use super::source::{ProgressReporter, SourceError, fetch_whole};

const FOLDER: &str = "hearth-models";

fn get(target: &JsValue, name: &str) -> JsValue {
    Reflect::get(target, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED)
}

/// Calls `target[name](...args)` and awaits the promise it returns.
async fn call(target: &JsValue, name: &str, args: &[JsValue]) -> Result<JsValue, JsValue> {
    let f: Function = get(target, name).dyn_into().map_err(|_| JsValue::from_str(&format!("no {name}()")))?;
    let array: js_sys::Array = args.iter().collect();
    let value = f.apply(target, &array)?;
    JsFuture::from(Promise::resolve(&value)).await
}

fn create_option(create: bool) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"create".into(), &create.into());
    o.into()
}

fn message(e: &JsValue) -> String {
    get(e, "message").as_string().or_else(|| e.as_string()).unwrap_or_else(|| format!("{e:?}"))
}

fn error_name(e: &JsValue) -> Option<String> {
    get(e, "name").as_string()
}

/// A refused storage call, flagged when the browser refused it for quota.
fn storage_error(e: JsValue) -> StorageError {
    match error_name(&e).as_deref() {
        Some("QuotaExceededError") => StorageError::quota(message(&e)),
        _ => StorageError::other(message(&e)),
    }
}

/// The cache folder of this origin, as the core's storage.
pub struct Opfs {
    dir: JsValue,
}

/// A `FileSystemWritableFileStream`: its bytes become the file's on `close()`.
pub struct OpfsWriter {
    writable: JsValue,
}

impl CacheWriter for OpfsWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        call(&self.writable, "write", &[Uint8Array::from(bytes).into()]).await.map(drop).map_err(storage_error)
    }

    async fn commit(self) -> Result<(), StorageError> {
        call(&self.writable, "close", &[]).await.map(drop).map_err(storage_error)
    }

    async fn discard(self) {
        let _ = call(&self.writable, "abort", &[]).await;
    }
}

impl Opfs {
    async fn handle(&self, name: &str, create: bool) -> Result<Option<JsValue>, StorageError> {
        match call(&self.dir, "getFileHandle", &[name.into(), create_option(create)]).await {
            Ok(handle) => Ok(Some(handle)),
            Err(e) if error_name(&e).as_deref() == Some("NotFoundError") => Ok(None),
            Err(e) => Err(storage_error(e)),
        }
    }
}

impl CacheStorage for Opfs {
    type File = Blob;
    type Writer = OpfsWriter;

    async fn file(&self, name: &str) -> Result<Option<Blob>, StorageError> {
        let Some(handle) = self.handle(name, false).await? else { return Ok(None) };
        let file = call(&handle, "getFile", &[]).await.map_err(storage_error)?;
        file.dyn_into().map(Some).map_err(|_| StorageError::other("getFile() gave no File"))
    }

    fn len(&self, file: &Blob) -> u64 {
        file.size() as u64
    }

    async fn read(&self, file: &Blob, range: Range<u64>) -> Result<Vec<u8>, StorageError> {
        let slice = file.slice_with_f64_and_f64(range.start as f64, range.end as f64).map_err(storage_error)?;
        let buffer = JsFuture::from(slice.array_buffer()).await.map_err(storage_error)?;
        Ok(Uint8Array::new(&buffer).to_vec())
    }

    async fn read_text(&self, name: &str) -> Result<Option<String>, StorageError> {
        let Some(file) = self.file(name).await? else { return Ok(None) };
        let text = JsFuture::from(file.text()).await.map_err(storage_error)?;
        Ok(text.as_string())
    }

    async fn write_text(&self, name: &str, text: &str) -> Result<(), StorageError> {
        let mut writer = self.create(name).await?;
        match writer.write(text.as_bytes()).await {
            Ok(()) => writer.commit().await,
            Err(e) => {
                writer.discard().await;
                Err(e)
            }
        }
    }

    async fn create(&self, name: &str) -> Result<OpfsWriter, StorageError> {
        let handle = self.handle(name, true).await?.ok_or_else(|| StorageError::other("no file handle"))?;
        let writable = call(&handle, "createWritable", &[]).await.map_err(storage_error)?;
        Ok(OpfsWriter { writable })
    }

    async fn remove(&self, name: &str) -> Result<(), StorageError> {
        match call(&self.dir, "removeEntry", &[name.into()]).await {
            Ok(_) => Ok(()),
            Err(e) if error_name(&e).as_deref() == Some("NotFoundError") => Ok(()),
            Err(e) => Err(storage_error(e)),
        }
    }

    async fn names(&self) -> Result<Vec<String>, StorageError> {
        let iter = Reflect::get(&self.dir, &js_sys::Symbol::async_iterator())
            .and_then(|f| f.dyn_into::<Function>().and_then(|f| f.call0(&self.dir)))
            .map_err(storage_error)?;
        let mut out = Vec::new();
        loop {
            let step = call(&iter, "next", &[]).await.map_err(storage_error)?;
            if get(&step, "done").as_bool().unwrap_or(true) {
                return Ok(out);
            }
            if let Some(name) = Reflect::get_u32(&get(&step, "value"), 0).ok().and_then(|n| n.as_string()) {
                out.push(name);
            }
        }
    }

    async fn free_bytes(&self) -> Option<u64> {
        let storage = get(&get(&js_sys::global(), "navigator"), "storage");
        let estimate = call(&storage, "estimate", &[]).await.ok()?;
        let (quota, usage) = (get(&estimate, "quota").as_f64()?, get(&estimate, "usage").as_f64().unwrap_or(0.0));
        Some((quota - usage).max(0.0) as u64)
    }
}

/// A `fetch` response's body, read chunk by chunk.
struct FetchBody<'a> {
    url: &'a str,
    reader: ReadableStreamDefaultReader,
    total: Option<u64>,
    received: u64,
    signal: Option<&'a AbortSignal>,
}

impl Body for FetchBody<'_> {
    fn announced_len(&self) -> Option<u64> {
        self.total
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        let step = JsFuture::from(self.reader.read()).await.map_err(|_| {
            if self.signal.is_some_and(AbortSignal::aborted) {
                SourceError::Aborted { url: self.url.to_owned() }
            } else {
                SourceError::Truncated {
                    url: self.url.to_owned(),
                    expected: self.total.unwrap_or(0),
                    received: self.received,
                }
            }
        })?;
        if get(&step, "done").as_bool().unwrap_or(true) {
            return Ok(None);
        }
        let chunk = get(&step, "value").unchecked_into::<Uint8Array>().to_vec();
        self.received += chunk.len() as u64;
        Ok(Some(chunk))
    }

    fn cancel(&mut self) {
        let _ = self.reader.cancel();
    }
}

/// The model cache of this origin: the core's policy over OPFS.
pub struct ModelCache(cache::ModelCache<Opfs>);

impl ModelCache {
    /// The cache, or `None` where the browser offers no OPFS (an insecure context, an old
    /// browser, storage disabled).
    pub async fn open() -> Option<ModelCache> {
        let storage = get(&get(&js_sys::global(), "navigator"), "storage");
        if storage.is_undefined() {
            return None;
        }
        let root = call(&storage, "getDirectory", &[]).await.ok()?;
        let dir = call(&root, "getDirectoryHandle", &[FOLDER.into(), create_option(true)]).await.ok()?;
        Some(ModelCache(cache::ModelCache::new(Opfs { dir })))
    }

    /// The cached file of `entry`, read once through SHA-256 and checked against its record and
    /// the catalog; `None` when there is none. A file that fails the check is deleted: an
    /// `IntegrityError`.
    pub async fn reuse(&self, entry: &CatalogEntry, signal: Option<&AbortSignal>) -> Result<Option<Blob>, JsError> {
        let cancelled = || signal.is_some_and(AbortSignal::aborted);
        Ok(self.0.reuse(entry, &cancelled).await?.map(|c| c.file))
    }

    /// Downloads `url` whole into the cache for `entry`, hashing it on the way, reporting
    /// `download` progress, and returns the cached file once its digest is the catalog's. On
    /// failure or abort nothing is left in the cache.
    pub async fn store(
        &self,
        entry: &CatalogEntry,
        url: &str,
        signal: Option<&AbortSignal>,
        progress: &ProgressReporter,
    ) -> Result<Blob, JsError> {
        let (response, total) = fetch_whole(url, signal).await?;
        let Some(body) = response.body() else {
            return Err(SourceError::Read { detail: format!("{url} sent no body") }.into());
        };
        let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
        let body = FetchBody { url, reader, total, received: 0, signal };
        let stored = self.0.store(entry, url, body, &|n, t| progress.report(n, t)).await?;
        Ok(stored.file)
    }

    /// The cached model files, with their recorded digests.
    pub async fn list(&self) -> Vec<CachedModel> {
        self.0.list().await
    }

    /// Removes the cached files whose key is `key` (every file when `None`); returns how many.
    pub async fn remove(&self, key: Option<&str>) -> u32 {
        self.0.remove(key).await
    }
}
