//! Which model file a load reads, as an engine keeps track of it: files the app supplied for
//! catalog keys, files already opened (their headers read, so the requirement is exact), and
//! which of those are the model cache's copy. Generic over the engine's file and blob types
//! (the browser's `GgufFile` and `Blob`; plain values in tests).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use super::CatalogEntry;

/// What an engine knows about each catalog key's file.
#[derive(Debug)]
pub struct FileBook<File, Blob> {
    /// Files the app supplied for catalog keys (`registerModel({ ..., file })`).
    supplied: RefCell<HashMap<String, Blob>>,
    /// Opened files, by key.
    opened: RefCell<HashMap<String, File>>,
    /// Keys whose opened file is the cached copy.
    cached: RefCell<HashSet<String>>,
}

impl<File, Blob> Default for FileBook<File, Blob> {
    fn default() -> Self {
        FileBook { supplied: RefCell::default(), opened: RefCell::default(), cached: RefCell::default() }
    }
}

impl<File: Clone, Blob: Clone> FileBook<File, Blob> {
    /// `key`'s source from now on: `blob` (a file the app supplied), else its URL. Its header is
    /// read again on the next load.
    pub fn set_source(&self, key: &str, blob: Option<Blob>) {
        self.forget(key);
        match blob {
            Some(b) => self.supplied.borrow_mut().insert(key.to_owned(), b),
            None => self.supplied.borrow_mut().remove(key),
        };
    }

    /// The file the app supplied for `key`.
    pub fn supplied(&self, key: &str) -> Option<Blob> {
        self.supplied.borrow().get(key).cloned()
    }

    /// Whether `entry`'s file comes from its URL (not a file the app supplied).
    pub fn uses_url(&self, entry: &CatalogEntry) -> bool {
        !entry.url.is_empty() && !self.supplied.borrow().contains_key(&entry.key)
    }

    /// The file opened for `key`, if any.
    pub fn opened(&self, key: &str) -> Option<File> {
        self.opened.borrow().get(key).cloned()
    }

    /// Records `file` as `key`'s opened file; `cached`: it is the model cache's copy.
    pub fn open(&self, key: &str, file: File, cached: bool) {
        self.opened.borrow_mut().insert(key.to_owned(), file);
        if cached {
            self.cached.borrow_mut().insert(key.to_owned());
        } else {
            self.cached.borrow_mut().remove(key);
        }
    }

    /// Whether `key`'s opened file is the cached copy.
    pub fn is_cached(&self, key: &str) -> bool {
        self.cached.borrow().contains(key)
    }

    /// Forgets `key`'s opened file (a new source, or its cached copy removed).
    pub fn forget(&self, key: &str) {
        self.opened.borrow_mut().remove(key);
        self.cached.borrow_mut().remove(key);
    }

    /// Forgets the files opened from the cache for `key` (every key's when `None`): the cached
    /// copies were removed.
    pub fn forget_cached(&self, key: Option<&str>) {
        let gone: Vec<String> =
            self.cached.borrow().iter().filter(|k| key.is_none_or(|want| want == k.as_str())).cloned().collect();
        for k in gone {
            self.forget(&k);
        }
    }
}
