//! The browser's model cache: whole GGUF files in the Origin Private File System
//! (`navigator.storage.getDirectory()`, folder `hearth-models`), so a model is downloaded once
//! per origin and later loads read it from disk (the `cache` progress phase).
//!
//! The policy is the core's ([`crate::cache`]): what is reused, downloaded, checked against its
//! SHA-256 and deleted, and so is the chunk loop the download is read through. Here is its
//! [`CacheStorage`] over OPFS. A file is written through a `FileSystemWritableFileStream`, whose
//! contents replace the file's only when the stream closes, so a download that fails, is
//! aborted or hashes wrong is never seen as a file. The free space is
//! `navigator.storage.estimate()`'s quota less its usage. The OPFS calls go through `Reflect`
//! (web-sys gates these interfaces behind unstable APIs).

use std::ops::{Deref, Range};

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob};

use crate::cache::{self, CacheStorage, CacheWriter, StorageError};
use crate::manager::CatalogEntry;

use super::error::JsError;
use super::source::{ProgressReporter, download, js_message, read_blob};

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

fn error_name(e: &JsValue) -> Option<String> {
    get(e, "name").as_string()
}

/// A refused storage call, flagged when the browser refused it for quota.
fn storage_error(e: JsValue) -> StorageError {
    match error_name(&e).as_deref() {
        Some("QuotaExceededError") => StorageError::quota(js_message(&e)),
        _ => StorageError::other(js_message(&e)),
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
        read_blob(file, range).await.map_err(storage_error)
    }

    async fn read_text(&self, name: &str) -> Result<Option<String>, StorageError> {
        let Some(file) = self.file(name).await? else { return Ok(None) };
        let text = JsFuture::from(file.text()).await.map_err(storage_error)?;
        Ok(text.as_string())
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
        let body = download(url, signal).await?;
        Ok(self.0.store(entry, url, body, &|n, t| progress.report(n, t)).await?.file)
    }
}

/// The core's `list` and `remove` as they are.
impl Deref for ModelCache {
    type Target = cache::ModelCache<Opfs>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
