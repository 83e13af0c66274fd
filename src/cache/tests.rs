//! Every branch of the cache policy, over a storage kept in memory.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use futures::executor::block_on;

use super::*;
use crate::error::ErrorClass;

/// A flat folder in memory, with switches for each way a real one fails.
#[derive(Default)]
struct Memory {
    files: Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
    free: Cell<Option<u64>>,
    /// Writes are refused for quota once a writer holds this many bytes.
    quota_at: Cell<Option<u64>>,
    fail_commit: Cell<bool>,
    fail_text_write: Cell<bool>,
    fail_read: Cell<bool>,
    reads: Cell<u64>,
}

struct MemoryWriter {
    files: Rc<RefCell<BTreeMap<String, Vec<u8>>>>,
    name: String,
    bytes: Vec<u8>,
    quota_at: Option<u64>,
    fail_commit: bool,
}

impl CacheWriter for MemoryWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        if self.quota_at.is_some_and(|q| (self.bytes.len() + bytes.len()) as u64 > q) {
            return Err(StorageError::quota("QuotaExceededError"));
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    async fn commit(self) -> Result<(), StorageError> {
        if self.fail_commit {
            return Err(StorageError::other("close failed"));
        }
        self.files.borrow_mut().insert(self.name, self.bytes);
        Ok(())
    }

    async fn discard(self) {}
}

impl CacheStorage for Memory {
    type File = Vec<u8>;
    type Writer = MemoryWriter;

    async fn file(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.files.borrow().get(name).cloned())
    }

    fn len(&self, file: &Vec<u8>) -> u64 {
        file.len() as u64
    }

    async fn read(&self, file: &Vec<u8>, range: Range<u64>) -> Result<Vec<u8>, StorageError> {
        if self.fail_read.get() {
            return Err(StorageError::other("NotReadableError"));
        }
        self.reads.set(self.reads.get() + range.end - range.start);
        Ok(file[range.start as usize..range.end as usize].to_vec())
    }

    async fn read_text(&self, name: &str) -> Result<Option<String>, StorageError> {
        Ok(self.files.borrow().get(name).map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    async fn write_text(&self, name: &str, text: &str) -> Result<(), StorageError> {
        if self.fail_text_write.get() {
            return Err(StorageError::other("write failed"));
        }
        self.files.borrow_mut().insert(name.to_owned(), text.as_bytes().to_vec());
        Ok(())
    }

    async fn create(&self, name: &str) -> Result<MemoryWriter, StorageError> {
        // OPFS creates the (empty) file when it opens a writer for it.
        self.files.borrow_mut().entry(name.to_owned()).or_default();
        Ok(MemoryWriter {
            files: self.files.clone(),
            name: name.to_owned(),
            bytes: Vec::new(),
            quota_at: self.quota_at.get(),
            fail_commit: self.fail_commit.get(),
        })
    }

    async fn remove(&self, name: &str) -> Result<(), StorageError> {
        self.files.borrow_mut().remove(name);
        Ok(())
    }

    async fn names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.files.borrow().keys().cloned().collect())
    }

    async fn free_bytes(&self) -> Option<u64> {
        self.free.get()
    }
}

/// A body of `chunks`, announcing `announced`, failing with `error` after them when given.
struct Chunks {
    chunks: Vec<Vec<u8>>,
    announced: Option<u64>,
    error: Option<SourceError>,
    cancelled: Rc<Cell<bool>>,
    read: Rc<Cell<usize>>,
}

impl Chunks {
    fn of(bytes: &[u8], announced: Option<u64>) -> Chunks {
        Chunks {
            chunks: bytes.chunks(1000).map(<[u8]>::to_vec).collect(),
            announced,
            error: None,
            cancelled: Rc::default(),
            read: Rc::default(),
        }
    }
}

impl Body for Chunks {
    fn announced_len(&self) -> Option<u64> {
        self.announced
    }

    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        let at = self.read.get();
        if at < self.chunks.len() {
            self.read.set(at + 1);
            return Ok(Some(self.chunks[at].clone()));
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    fn cancel(&mut self) {
        self.cancelled.set(true);
    }
}

const URL: &str = "/models/m.gguf";

fn model_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

fn entry(sha256: Option<String>, file_bytes: u64) -> CatalogEntry {
    CatalogEntry {
        key: "m".to_owned(),
        url: URL.to_owned(),
        sha256,
        arch: "llama".to_owned(),
        quant: "Q4_0".to_owned(),
        file_bytes,
        context_length: 128,
        description: String::new(),
        required_bytes: None,
    }
}

fn never() -> bool {
    false
}

/// A cache holding `bytes` for `entry`, stored through the policy.
fn stored(bytes: &[u8], entry: &CatalogEntry) -> ModelCache<Memory> {
    let cache = ModelCache::new(Memory::default());
    block_on(cache.store(entry, URL, Chunks::of(bytes, Some(bytes.len() as u64)), &|_, _| {})).unwrap();
    cache
}

fn names(cache: &ModelCache<Memory>) -> Vec<String> {
    cache.storage().files.borrow().keys().cloned().collect()
}

fn file_of(cache: &ModelCache<Memory>, e: &CatalogEntry) -> Option<Vec<u8>> {
    cache.storage().files.borrow().get(&cache_file_name(e)).cloned()
}

fn set_file(cache: &ModelCache<Memory>, e: &CatalogEntry, bytes: Vec<u8>) {
    cache.storage().files.borrow_mut().insert(cache_file_name(e), bytes);
}

#[test]
fn sha256_matches_the_standard_vectors() {
    assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn store_streams_checks_and_records_the_catalogs_digest() {
    let bytes = model_bytes(10_500);
    let e = entry(Some(sha256_hex(&bytes)), bytes.len() as u64);
    let cache = ModelCache::new(Memory::default());
    cache.storage().free.set(Some(1 << 20));
    let seen = RefCell::new(Vec::new());
    let got = block_on(cache.store(&e, URL, Chunks::of(&bytes, Some(10_500)), &|n, t| seen.borrow_mut().push((n, t))))
        .unwrap();
    assert_eq!(got, Cached { file: bytes.clone(), bytes: 10_500, sha256: sha256_hex(&bytes) });
    assert_eq!(file_of(&cache, &e), Some(bytes.clone()));
    let name = cache_file_name(&e);
    assert_eq!(names(&cache), vec![name.clone(), record_name(&name)]);
    // Progress per chunk, ending with everything.
    assert_eq!(seen.borrow().len(), 11);
    assert_eq!(seen.borrow().last(), Some(&(10_500, Some(10_500))));
    // The next reuse reads the file once through the hasher and accepts it.
    let again = block_on(cache.reuse(&e, &never)).unwrap().unwrap();
    assert_eq!(again.sha256, sha256_hex(&bytes));
    assert_eq!(cache.storage().reads.get(), 10_500);
}

#[test]
fn a_download_that_differs_from_the_catalog_is_never_kept() {
    let bytes = model_bytes(5000);
    let wrong = "0".repeat(64);
    let e = entry(Some(wrong.clone()), 5000);
    let cache = ModelCache::new(Memory::default());
    let err = block_on(cache.store(&e, URL, Chunks::of(&bytes, Some(5000)), &|_, _| {})).unwrap_err();
    assert_eq!(
        err,
        CacheError::Integrity {
            file: cache_file_name(&e),
            expected_sha256: wrong.clone(),
            actual_sha256: sha256_hex(&bytes),
            expected_bytes: 5000,
            actual_bytes: 5000,
        }
    );
    assert_eq!(err.code(), ErrorCode::IntegrityMismatch);
    assert_eq!(err.code().class(), ErrorClass::Integrity);
    let message = err.to_string();
    assert!(message.contains(&cache_file_name(&e)) && message.contains(&wrong), "{message}");
    assert!(message.contains(&sha256_hex(&bytes)), "{message}");
    let fields: Vec<&str> = err.details().iter().map(|(k, _)| *k).collect();
    assert_eq!(fields, ["file", "expectedSha256", "actualSha256", "expectedBytes", "actualBytes"]);
    assert!(names(&cache).is_empty(), "{:?}", names(&cache));
}

#[test]
fn an_entry_without_a_digest_is_hashed_and_its_digest_listed() {
    let bytes = model_bytes(3000);
    let e = entry(None, 3000);
    let cache = stored(&bytes, &e);
    let listed = block_on(cache.list());
    assert_eq!(
        listed,
        vec![CachedModel {
            key: "m".to_owned(),
            file: cache_file_name(&e),
            bytes: 3000,
            sha256: Some(sha256_hex(&bytes))
        }]
    );
    let json = serde_json::to_value(&listed[0]).unwrap();
    assert_eq!(json["sha256"], sha256_hex(&bytes).as_str());
    // Reuse checks it against the recorded digest.
    assert!(block_on(cache.reuse(&e, &never)).unwrap().is_some());
    set_file(&cache, &e, model_bytes(2999));
    assert_eq!(block_on(cache.reuse(&e, &never)).unwrap_err().code(), ErrorCode::IntegrityMismatch);
}

#[test]
fn too_little_space_is_refused_before_anything_is_written() {
    let bytes = model_bytes(4000);
    let e = entry(None, 4000);
    // The announced length decides; without one, the catalog's size.
    for announced in [Some(4000), None] {
        let cache = ModelCache::new(Memory::default());
        cache.storage().free.set(Some(3999));
        let body = Chunks::of(&bytes, announced);
        let (cancelled, read) = (body.cancelled.clone(), body.read.clone());
        let err = block_on(cache.store(&e, URL, body, &|_, _| {})).unwrap_err();
        assert_eq!(err, CacheError::Quota { file: cache_file_name(&e), needed: Some(4000), available: Some(3999) });
        assert_eq!(err.code(), ErrorCode::StorageQuota);
        assert_eq!(err.code().class(), ErrorClass::Download);
        assert!(err.to_string().contains("4000 bytes needed, 3999 available"), "{err}");
        assert!(cancelled.get() && read.get() == 0, "the body is cancelled unread");
        assert!(names(&cache).is_empty());
    }
    // Exactly enough is enough.
    let cache = ModelCache::new(Memory::default());
    cache.storage().free.set(Some(4000));
    assert!(block_on(cache.store(&e, URL, Chunks::of(&bytes, Some(4000)), &|_, _| {})).is_ok());
}

#[test]
fn quota_exceeded_midway_leaves_no_partial_file() {
    let bytes = model_bytes(4000);
    let e = entry(None, 4000);
    let cache = ModelCache::new(Memory::default());
    cache.storage().quota_at.set(Some(2500));
    let body = Chunks::of(&bytes, Some(4000));
    let cancelled = body.cancelled.clone();
    let err = block_on(cache.store(&e, URL, body, &|_, _| {})).unwrap_err();
    assert_eq!(err, CacheError::Quota { file: cache_file_name(&e), needed: Some(4000), available: None });
    assert!(cancelled.get());
    assert!(names(&cache).is_empty(), "{:?}", names(&cache));
}

#[test]
fn failed_or_cancelled_downloads_keep_nothing() {
    let bytes = model_bytes(4000);
    let e = entry(None, 4000);
    let cases: Vec<(Chunks, ErrorCode)> = vec![
        // Fewer bytes than announced.
        (Chunks::of(&bytes[..3000], Some(4000)), ErrorCode::TruncatedBody),
        // More bytes than announced.
        (Chunks::of(&bytes, Some(3500)), ErrorCode::ReadFailed),
        // The connection cut, or the caller's AbortSignal.
        (
            Chunks {
                error: Some(SourceError::Aborted { url: URL.to_owned() }),
                ..Chunks::of(&bytes[..2000], Some(4000))
            },
            ErrorCode::Aborted,
        ),
        (
            Chunks {
                error: Some(SourceError::Truncated { url: URL.to_owned(), expected: 4000, received: 2000 }),
                ..Chunks::of(&bytes[..2000], Some(4000))
            },
            ErrorCode::TruncatedBody,
        ),
    ];
    for (body, code) in cases {
        let cache = ModelCache::new(Memory::default());
        let err = block_on(cache.store(&e, URL, body, &|_, _| {})).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(names(&cache).is_empty(), "{code}: {:?}", names(&cache));
    }
}

#[test]
fn a_failed_commit_or_record_keeps_nothing() {
    let bytes = model_bytes(2000);
    let e = entry(None, 2000);
    for fail_commit in [true, false] {
        let cache = ModelCache::new(Memory::default());
        cache.storage().fail_commit.set(fail_commit);
        cache.storage().fail_text_write.set(!fail_commit);
        let err = block_on(cache.store(&e, URL, Chunks::of(&bytes, Some(2000)), &|_, _| {})).unwrap_err();
        assert_eq!(err.code(), ErrorCode::CacheWriteFailed, "{err}");
        assert!(names(&cache).is_empty(), "{:?}", names(&cache));
    }
}

#[test]
fn storing_again_drops_the_old_record_first() {
    let bytes = model_bytes(2000);
    let e = entry(None, 2000);
    let cache = stored(&bytes, &e);
    // A second download that fails midway: the old copy's record must not vouch for anything.
    let body = Chunks { error: Some(SourceError::Aborted { url: URL.to_owned() }), ..Chunks::of(&bytes[..1000], None) };
    assert!(block_on(cache.store(&e, URL, body, &|_, _| {})).is_err());
    assert_eq!(block_on(cache.reuse(&e, &never)), Ok(None));
}

#[test]
fn nothing_cached_is_nothing_to_reuse() {
    let cache = ModelCache::new(Memory::default());
    assert_eq!(block_on(cache.reuse(&entry(None, 10), &never)), Ok(None));
}

#[test]
fn a_file_without_its_record_is_removed_not_reused() {
    let bytes = model_bytes(2000);
    let e = entry(Some(sha256_hex(&bytes)), 2000);
    let cache = ModelCache::new(Memory::default());
    set_file(&cache, &e, bytes);
    assert_eq!(block_on(cache.reuse(&e, &never)), Ok(None));
    assert!(names(&cache).is_empty());
    // An unreadable record counts as none.
    let cache = stored(&model_bytes(2000), &e);
    let record = record_name(&cache_file_name(&e));
    cache.storage().files.borrow_mut().insert(record, b"{not json".to_vec());
    assert_eq!(block_on(cache.reuse(&e, &never)), Ok(None));
    assert!(names(&cache).is_empty());
}

/// Every corrupted byte and every truncation of a cached file is detected before use, the file
/// deleted.
#[test]
fn every_corruption_and_truncation_is_detected() {
    let bytes = model_bytes(1200);
    for digest in [Some(sha256_hex(&bytes)), None] {
        let e = entry(digest, 1200);
        for at in (0..1200).step_by(7).chain([1199]) {
            let cache = stored(&bytes, &e);
            let mut bad = bytes.clone();
            bad[at] ^= 1 << (at % 8);
            set_file(&cache, &e, bad.clone());
            let err = block_on(cache.reuse(&e, &never)).unwrap_err();
            assert_eq!(
                err,
                CacheError::Integrity {
                    file: cache_file_name(&e),
                    expected_sha256: sha256_hex(&bytes),
                    actual_sha256: sha256_hex(&bad),
                    expected_bytes: 1200,
                    actual_bytes: 1200,
                },
                "byte {at}"
            );
            assert!(names(&cache).is_empty(), "byte {at}");
        }
        for len in (0..1200).step_by(13) {
            let cache = stored(&bytes, &e);
            set_file(&cache, &e, bytes[..len].to_vec());
            match block_on(cache.reuse(&e, &never)) {
                Err(CacheError::Integrity { actual_bytes, expected_bytes: 1200, .. }) => {
                    assert_eq!(actual_bytes, len as u64)
                }
                other => panic!("truncated to {len}: {other:?}"),
            }
            assert!(names(&cache).is_empty(), "truncated to {len}");
        }
        // Appended bytes too.
        let cache = stored(&bytes, &e);
        set_file(&cache, &e, [bytes.as_slice(), b"x"].concat());
        assert_eq!(block_on(cache.reuse(&e, &never)).unwrap_err().code(), ErrorCode::IntegrityMismatch);
    }
}

#[test]
fn a_record_that_is_not_the_catalogs_digest_is_a_mismatch() {
    let bytes = model_bytes(2000);
    let stored_as = entry(Some(sha256_hex(&bytes)), 2000);
    let cache = stored(&bytes, &stored_as);
    // The catalog now names another digest with the same 16-digit prefix (the file name).
    let mut other = sha256_hex(&bytes);
    other.replace_range(60.., "0000");
    let e = entry(Some(other.clone()), 2000);
    assert_eq!(cache_file_name(&e), cache_file_name(&stored_as));
    match block_on(cache.reuse(&e, &never)) {
        Err(CacheError::Integrity { expected_sha256, actual_sha256, .. }) => {
            assert_eq!((expected_sha256, actual_sha256), (other, sha256_hex(&bytes)));
        }
        got => panic!("{got:?}"),
    }
    assert!(names(&cache).is_empty());
}

#[test]
fn a_record_whose_size_disagrees_is_a_mismatch() {
    let bytes = model_bytes(2000);
    let e = entry(None, 2000);
    let cache = stored(&bytes, &e);
    let record = format!(r#"{{"sha256":"{}","bytes":1999}}"#, sha256_hex(&bytes));
    cache.storage().files.borrow_mut().insert(record_name(&cache_file_name(&e)), record.into_bytes());
    assert!(matches!(
        block_on(cache.reuse(&e, &never)),
        Err(CacheError::Integrity { expected_bytes: 1999, actual_bytes: 2000, .. })
    ));
    assert!(names(&cache).is_empty());
}

#[test]
fn an_unreadable_cached_file_is_removed_with_a_storage_error() {
    let bytes = model_bytes(2000);
    let e = entry(None, 2000);
    let cache = stored(&bytes, &e);
    cache.storage().fail_read.set(true);
    let err = block_on(cache.reuse(&e, &never)).unwrap_err();
    assert_eq!(err, CacheError::Storage { file: cache_file_name(&e), detail: "NotReadableError".to_owned() });
    assert!(names(&cache).is_empty());
}

#[test]
fn a_cancelled_check_keeps_the_file() {
    let bytes = model_bytes(2000);
    let e = entry(None, 2000);
    let cache = stored(&bytes, &e);
    let err = block_on(cache.reuse(&e, &|| true)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Aborted);
    assert_eq!(names(&cache).len(), 2);
    assert!(block_on(cache.reuse(&e, &never)).unwrap().is_some());
}

#[test]
fn large_files_are_read_in_chunks() {
    let bytes = model_bytes((VERIFY_CHUNK * 2 + 5) as usize);
    let e = entry(None, bytes.len() as u64);
    let cache = stored(&bytes, &e);
    let got = block_on(cache.reuse(&e, &never)).unwrap().unwrap();
    assert_eq!(got.sha256, sha256_hex(&bytes));
    assert_eq!(cache.storage().reads.get(), bytes.len() as u64);
}

#[test]
fn list_and_remove_see_model_files_not_records() {
    let cache = ModelCache::new(Memory::default());
    let (a, b) = (model_bytes(100), model_bytes(200));
    let mut ea = entry(None, 100);
    ea.key = "alpha".to_owned();
    let mut eb = entry(None, 200);
    eb.key = "beta-2".to_owned();
    block_on(cache.store(&ea, URL, Chunks::of(&a, Some(100)), &|_, _| {})).unwrap();
    block_on(cache.store(&eb, URL, Chunks::of(&b, Some(200)), &|_, _| {})).unwrap();
    // A file some earlier version left without a record is listed, without a digest.
    cache.storage().files.borrow_mut().insert("old-7.gguf".to_owned(), vec![1, 2, 3]);
    let listed = block_on(cache.list());
    let rows: Vec<(&str, u64, bool)> = listed.iter().map(|c| (c.key.as_str(), c.bytes, c.sha256.is_some())).collect();
    assert_eq!(rows, [("alpha", 100, true), ("beta-2", 200, true), ("old", 3, false)]);
    assert_eq!(block_on(cache.remove(Some("beta-2"))), 1);
    assert_eq!(names(&cache).len(), 3, "{:?}", names(&cache));
    assert_eq!(block_on(cache.remove(None)), 2);
    assert!(names(&cache).is_empty());
}
