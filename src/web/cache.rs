//! The browser's model cache: whole GGUF files in the Origin Private File System
//! (`navigator.storage.getDirectory()`, folder `hearth-models`), so a model is downloaded once
//! per origin and later loads read it from disk (the `cache` progress phase).
//!
//! A file is written through a `FileSystemWritableFileStream`, whose contents replace the
//! file's only when the stream closes: a download that fails or is aborted leaves no partial
//! file behind, and a cached file is one whose size equals the size the server announced.
//! The file names and the length check are the core's ([`crate::source`]). The OPFS calls go
//! through `Reflect` (web-sys gates these interfaces behind unstable APIs).

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, ReadableStreamDefaultReader};

use crate::manager::CatalogEntry;
use crate::source::{cache_file_name, cache_key_of, check_complete};

use super::error::{ErrorCode, JsError};
use super::source::{ProgressReporter, SourceError, fetch_whole};

const FOLDER: &str = "hearth-models";

/// The cache folder of this origin.
pub struct ModelCache {
    dir: JsValue,
}

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
        Some(ModelCache { dir })
    }

    /// The cached file of `entry` if it is complete (`expected_len` bytes, the size the server
    /// announced).
    pub async fn get(&self, entry: &CatalogEntry, expected_len: Option<u64>) -> Option<Blob> {
        let handle =
            call(&self.dir, "getFileHandle", &[cache_file_name(entry).into(), create_option(false)]).await.ok()?;
        let file: Blob = call(&handle, "getFile", &[]).await.ok()?.dyn_into().ok()?;
        let size = file.size() as u64;
        let complete = size > 0 && expected_len.is_none_or(|n| n == size);
        complete.then_some(file)
    }

    /// Downloads `url` whole into the cache for `entry`, reporting `download` progress, and
    /// returns the cached file. On failure or abort nothing is left in the cache.
    pub async fn store(
        &self,
        entry: &CatalogEntry,
        url: &str,
        signal: Option<&AbortSignal>,
        progress: &ProgressReporter,
    ) -> Result<Blob, JsError> {
        let name = cache_file_name(entry);
        let storage_error = |e: JsValue| {
            JsError::of(
                ErrorCode::CacheWriteFailed,
                format!("Saving {} to the browser's model cache failed: {}", entry.key, message(&e)),
            )
        };
        let handle = call(&self.dir, "getFileHandle", &[name.clone().into(), create_option(true)])
            .await
            .map_err(storage_error)?;
        let writable = call(&handle, "createWritable", &[]).await.map_err(storage_error)?;
        let result = async {
            let (response, total) = fetch_whole(url, signal).await?;
            let Some(body) = response.body() else {
                return Err(SourceError::Read { detail: format!("{url} sent no body") }.into());
            };
            let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
            let mut received = 0u64;
            loop {
                let step = JsFuture::from(reader.read()).await.map_err(|_| {
                    if signal.is_some_and(AbortSignal::aborted) {
                        JsError::from(SourceError::Aborted { url: url.to_owned() })
                    } else {
                        JsError::from(SourceError::Truncated {
                            url: url.to_owned(),
                            expected: total.unwrap_or(0),
                            received,
                        })
                    }
                })?;
                if get(&step, "done").as_bool().unwrap_or(true) {
                    break;
                }
                let chunk: Uint8Array = get(&step, "value").unchecked_into();
                received += u64::from(chunk.length());
                call(&writable, "write", &[chunk.into()]).await.map_err(storage_error)?;
                progress.report(received, total);
            }
            Ok(check_complete(url, total, received)?)
        }
        .await;
        match result {
            Ok(()) => {
                call(&writable, "close", &[]).await.map_err(storage_error)?;
                let file: Blob = call(&handle, "getFile", &[])
                    .await
                    .map_err(storage_error)?
                    .dyn_into()
                    .map_err(|_| storage_error(JsValue::from_str("getFile() gave no File")))?;
                Ok(file)
            }
            Err(e) => {
                // The stream's contents never reach the file; drop the (empty) entry too.
                let _ = call(&writable, "abort", &[]).await;
                let _ = call(&self.dir, "removeEntry", &[name.into()]).await;
                Err(e)
            }
        }
    }

    /// The cached files: `(file name, bytes)`.
    pub async fn list(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let Ok(iter) = Reflect::get(&self.dir, &js_sys::Symbol::async_iterator())
            .and_then(|f| f.dyn_into::<Function>().and_then(|f| f.call0(&self.dir)))
        else {
            return out;
        };
        while let Ok(step) = call(&iter, "next", &[]).await {
            if get(&step, "done").as_bool().unwrap_or(true) {
                break;
            }
            let pair = get(&step, "value");
            let (name, handle) =
                (Reflect::get_u32(&pair, 0).unwrap_or_default(), Reflect::get_u32(&pair, 1).unwrap_or_default());
            if let (Some(name), Ok(file)) = (name.as_string(), call(&handle, "getFile", &[]).await)
                && let Ok(file) = file.dyn_into::<Blob>()
            {
                out.push((name, file.size() as u64));
            }
        }
        out
    }

    /// Removes the cached files whose key is `key` (every file when `None`); returns how many.
    pub async fn remove(&self, key: Option<&str>) -> u32 {
        let mut removed = 0;
        for (name, _) in self.list().await {
            let matches = key.is_none_or(|k| cache_key_of(&name) == k);
            if matches && call(&self.dir, "removeEntry", &[name.into()]).await.is_ok() {
                removed += 1;
            }
        }
        removed
    }
}
