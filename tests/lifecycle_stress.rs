#![cfg(not(target_arch = "wasm32"))] // reads model files from disk; the page tier has tests/js/stress.test.mjs
//! The ModelManager's lifecycle under stress, natively, on the CPU backend with the three real
//! models: the core [`ModelLifecycle`] over an engine that loads real files with the core loader
//! ([`LoadedModel::load`]), so every switch, unload and cancellation below runs the product's
//! code on real weights, without a browser.
//!
//! - switch/unload cycles across the three models (20; 100 with `HEARTH_FULL=1`): after each
//!   unload the memory account is empty, and the process's resident memory (RSS, which holds
//!   every weight on the CPU backend) is back at its baseline within 1% at the end;
//! - 10 concurrent switches: one load per distinct model, each call resolves with its model,
//!   the account holds exactly the resident models;
//! - a load cancelled at 20 points spread over its upload: each is a `CancelledError`, the
//!   previous model stays current and the memory returns to the baseline.
//!
//! The figures (RSS before and after, times) are printed. Models live in `$HEARTH_MODELS_DIR`
//! (default `models/`); missing models fail the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::executor::{LocalPool, block_on};
use futures::task::LocalSpawnExt;
use hearth::backend::Backend;
use hearth::error::{Coded, ErrorClass, ErrorCode};
use hearth::gguf::GgufHeader;
use hearth::infer::FileSource;
use hearth::infer::load::read_header_from;
use hearth::infer::session::{LoadHooks, LoadPlan, LoadedModel, ModelLoadError};
use hearth::manager::{Cancel, Catalog, CatalogEntry, Engine, EngineError, ModelLifecycle, Resident, Settings};
use hearth::memory::{Budget, DeviceLimits, MemoryManager, Requirement};
use hearth::status::{ErrorInfo, Payload, StatusEvent, StatusSink, StatusStream};

const MODELS: [(&str, &str, &str); 3] = [
    ("smollm2-135m", "smollm2-135m-instruct-q4_1.gguf", "llama"),
    ("gemma-3-270m", "gemma-3-270m-q4_k_m.gguf", "gemma3"),
    ("qwen2.5-0.5b", "qwen2.5-coder-0.5b-instruct.gguf", "qwen2"),
];

/// Context every model is loaded with (small: the weights dominate, as in the browser).
const CONTEXT: u32 = 256;

fn models_dir() -> Option<PathBuf> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED the lifecycle stress tests: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Some(std::env::var_os("HEARTH_MODELS_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("models")))
}

/// The system allocator, counting the bytes allocated and not yet freed: on the CPU backend
/// every weight, cache and scratch buffer is a heap allocation, so this is the resident memory
/// of the models, exactly (the process's RSS also depends on what the allocator keeps).
struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            LIVE.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The heap count is the whole process's, so the tests of this file run one at a time (the test
/// harness runs them on parallel threads otherwise, and one test's models would move another's
/// baseline).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Heap bytes allocated and not freed, by every thread of the test binary.
fn live_bytes() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// The process's resident set in bytes (Linux): printed beside the live bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("resident pages");
    pages * 4096
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// A cancellation that fires by itself after `after` progress reports of the load it is given
/// (or when [`Trip::fire`] is called).
#[derive(Clone, Default)]
struct Trip {
    fired: Rc<Cell<bool>>,
    after: Option<u32>,
    seen: Rc<Cell<u32>>,
}

impl Trip {
    fn after(n: u32) -> Trip {
        Trip { after: Some(n), ..Trip::default() }
    }

    fn progressed(&self) {
        self.seen.set(self.seen.get() + 1);
        if self.after.is_some_and(|n| self.seen.get() >= n) {
            self.fired.set(true);
        }
    }
}

impl Cancel for Trip {
    fn is_cancelled(&self) -> bool {
        self.fired.get()
    }
}

/// Keeps only the `error` events (a recorder of every event would grow with each load).
#[derive(Clone, Default)]
struct Errors(Rc<RefCell<Vec<ErrorInfo>>>);

impl StatusSink for Errors {
    fn emit(&self, event: &Rc<StatusEvent>) {
        if let Payload::Error(info) = &event.payload {
            self.0.borrow_mut().push(info.clone());
        }
    }
}

#[derive(Debug, Clone)]
struct StressError {
    code: ErrorCode,
    message: String,
}

impl EngineError for StressError {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn message(&self) -> String {
        self.message.clone()
    }
}

impl StressError {
    fn io(e: impl std::fmt::Display) -> StressError {
        StressError { code: ErrorCode::NetworkError, message: e.to_string() }
    }
}

/// The lifecycle's engine over real files on the CPU backend: headers read with the core
/// loader's header loop, weights with [`LoadedModel::load`].
struct FileEngine {
    dir: PathBuf,
    memory: MemoryManager,
    status: Rc<StatusStream>,
    device: Backend,
    headers: RefCell<HashMap<String, Rc<GgufHeader>>>,
    loads: RefCell<Vec<String>>,
}

impl Engine for FileEngine {
    type Model = Rc<LoadedModel>;
    type Error = StressError;
    type Signal = Trip;

    fn memory(&self) -> &MemoryManager {
        &self.memory
    }

    fn report_memory(&self, _key: Option<&str>) {}

    fn exact_requirement(&self, entry: &CatalogEntry, context: u32) -> Option<Requirement> {
        let header = self.headers.borrow().get(&entry.key).cloned()?;
        Requirement::for_load(&header, context, &self.memory.limits()).ok()
    }

    async fn open(&self, entry: &CatalogEntry, _signal: Option<&Trip>) -> Result<(), StressError> {
        if self.headers.borrow().contains_key(&entry.key) {
            return Ok(());
        }
        let source = FileSource::open(self.dir.join(&entry.url)).map_err(StressError::io)?;
        let header = read_header_from(&source).await.map_err(StressError::io)?;
        self.headers.borrow_mut().insert(entry.key.clone(), Rc::new(header));
        Ok(())
    }

    async fn load(
        &self,
        entry: &CatalogEntry,
        context: u32,
        signal: Option<&Trip>,
    ) -> Result<Rc<LoadedModel>, StressError> {
        self.loads.borrow_mut().push(entry.key.clone());
        let header = self.headers.borrow().get(&entry.key).cloned().expect("opened first");
        let plan = LoadPlan::new(&header, Some(entry.key.clone()), Some(context))
            .map_err(|e| StressError { code: e.code(), message: e.message() })?;
        let source = FileSource::open(self.dir.join(&entry.url)).map_err(StressError::io)?;
        let on_progress = |_: &hearth::status::Progress| {
            if let Some(s) = signal {
                s.progressed();
            }
        };
        let cancelled = || signal.is_some_and(Cancel::is_cancelled);
        let hooks = LoadHooks { on_progress: &on_progress, cancelled: &cancelled, announce: false };
        match LoadedModel::load(plan, &self.device, &header, &source, hooks, Some(self.status.clone())).await {
            Ok(model) => Ok(Rc::new(model)),
            Err(ModelLoadError::Session(e)) => Err(StressError { code: e.code(), message: e.message() }),
            Err(ModelLoadError::Load(e)) => Err(StressError::io(e)),
        }
    }

    async fn recover(&self) -> Result<u32, StressError> {
        Ok(0)
    }
}

struct Stress {
    pool: LocalPool,
    lifecycle: Rc<ModelLifecycle<FileEngine>>,
    errors: Errors,
}

impl Stress {
    fn new() -> Option<Stress> {
        let dir = models_dir()?;
        let mut catalog = Catalog::default();
        for (key, file, arch) in MODELS {
            let path = dir.join(file);
            let len = std::fs::metadata(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (./run test fetches it)", path.display()))
                .len();
            let entry = CatalogEntry {
                key: key.into(),
                url: file.into(),
                sha256: None,
                arch: arch.into(),
                quant: "Q4".into(),
                file_bytes: len,
                context_length: CONTEXT,
                description: String::new(),
                required_bytes: None,
            };
            catalog.register(entry, true).unwrap();
        }
        let errors = Errors::default();
        let status = Rc::new(StatusStream::new(Box::new(errors.clone()), 64, || 0.0));
        let limits = DeviceLimits { max_buffer_size: u64::MAX, max_storage_buffer_binding_size: u64::MAX };
        let memory = MemoryManager::with_budget(Budget::estimate(&Default::default()).overridden(8 << 30), limits);
        let engine = FileEngine {
            dir,
            memory,
            status: status.clone(),
            device: Backend::cpu(),
            headers: RefCell::default(),
            loads: RefCell::default(),
        };
        let settings = Settings { context_length: Some(CONTEXT), ..Settings::default() };
        let lifecycle = ModelLifecycle::new(engine, status, catalog, settings, 0);
        Some(Stress { pool: LocalPool::new(), lifecycle, errors })
    }

    fn switch(&mut self, key: &str, signal: Option<Trip>) -> Result<String, String> {
        let op = self.lifecycle.switch(key, signal);
        self.pool.run_until(op).map(|s| s.key).map_err(|e| format!("{}: {}", e.code().as_str(), e.message()))
    }

    fn unload(&mut self, key: &str) -> bool {
        let op = self.lifecycle.unload(key);
        self.pool.run_until(op).unwrap()
    }

    fn registered(&self) -> u64 {
        self.lifecycle.engine().memory.registered_bytes()
    }

    fn errors(&self) -> Vec<(String, String)> {
        self.errors.0.borrow().iter().map(|i| (i.name.clone(), i.message.clone())).collect()
    }
}

#[test]
fn switch_and_unload_cycles_across_the_real_models_return_to_the_baseline() {
    let _serial = one_at_a_time();
    let Some(mut s) = Stress::new() else { return };
    let cycles: usize = if std::env::var("HEARTH_FULL").as_deref() == Ok("1") { 100 } else { 20 };
    // One round first: headers read, the lifecycle's tables at their size.
    for (key, _, _) in MODELS {
        s.switch(key, None).unwrap();
        assert!(s.unload(key));
    }
    let (baseline, baseline_rss) = (live_bytes(), rss_bytes());
    let started = Instant::now();
    let mut peak = 0u64;
    for n in 0..cycles {
        let key = MODELS[n % MODELS.len()].0;
        assert_eq!(s.switch(key, None).as_deref(), Ok(key));
        let resident = s.lifecycle.model(key).unwrap().resident_bytes();
        assert_eq!(s.registered(), resident, "cycle {n}: the account holds the model's bytes");
        peak = peak.max(live_bytes());
        assert!(s.unload(key));
        assert_eq!(s.registered(), 0, "cycle {n}: the account is empty after the unload");
        assert!(s.lifecycle.resident().is_empty() && s.lifecycle.current().is_none());
    }
    let (after, after_rss) = (live_bytes(), rss_bytes());
    let seconds = started.elapsed().as_secs_f64();
    let change = after as f64 / baseline as f64 - 1.0;
    println!(
        "{cycles} switch/unload cycles (CPU, real models): heap {:.2} MiB before, {:.2} MiB after ({:+.3}%), \
         {:.1} MiB at the peak; RSS {:.1} -> {:.1} MiB; {seconds:.1} s ({:.0} ms per cycle)",
        mib(baseline),
        mib(after),
        change * 100.0,
        mib(peak),
        mib(baseline_rss),
        mib(after_rss),
        seconds * 1000.0 / cycles as f64
    );
    assert!(change.abs() <= 0.01, "heap {baseline} -> {after} B");
    assert!(peak > baseline + (50 << 20), "the models were resident at the peak");
    assert_eq!(s.lifecycle.engine().loads.borrow().len(), cycles + MODELS.len(), "one load per switch");
    assert!(s.errors().is_empty(), "{:?}", s.errors());
}

/// Where a spawned switch leaves the key it made current, or its error's message.
type Slot = Rc<RefCell<Option<Result<String, String>>>>;

#[test]
fn ten_concurrent_switches_load_each_real_model_once() {
    let _serial = one_at_a_time();
    let Some(mut s) = Stress::new() else { return };
    let keys = [
        "smollm2-135m",
        "gemma-3-270m",
        "smollm2-135m",
        "qwen2.5-0.5b",
        "gemma-3-270m",
        "smollm2-135m",
        "qwen2.5-0.5b",
        "gemma-3-270m",
        "smollm2-135m",
        "qwen2.5-0.5b",
    ];
    let slots: Vec<Slot> = keys
        .iter()
        .map(|key| {
            let slot: Slot = Rc::default();
            let out = slot.clone();
            let op = s.lifecycle.switch(key, None);
            s.pool
                .spawner()
                .spawn_local(async move {
                    *out.borrow_mut() = Some(op.await.map(|d| d.key).map_err(|e| e.message()));
                })
                .unwrap();
            slot
        })
        .collect();
    s.pool.run_until_stalled();
    for (slot, key) in slots.iter().zip(keys) {
        assert_eq!(slot.borrow().clone(), Some(Ok(key.to_owned())));
    }
    assert_eq!(*s.lifecycle.engine().loads.borrow(), ["smollm2-135m", "gemma-3-270m", "qwen2.5-0.5b"]);
    // The chain's last operation (qwen's, which the last call joined) made its model current.
    assert_eq!(s.lifecycle.current().as_deref(), Some("qwen2.5-0.5b"));
    let sum: u64 = s.lifecycle.resident().iter().map(|r| r.model.resident_bytes()).sum();
    assert_eq!(s.registered(), sum);
    assert_eq!(s.lifecycle.resident().len(), 3);
    assert!(s.errors().is_empty());
}

#[test]
fn a_load_cancelled_at_twenty_points_keeps_the_previous_model_and_the_baseline() {
    let _serial = one_at_a_time();
    let Some(mut s) = Stress::new() else { return };
    let (previous, target) = ("smollm2-135m", "gemma-3-270m");
    // How many progress reports a whole load of the target makes.
    let count = Trip::default();
    s.switch(target, Some(count.clone())).unwrap();
    assert!(s.unload(target));
    let reports = count.seen.get();
    assert!(reports >= 40, "{reports} progress reports");
    s.switch(previous, None).unwrap();
    let registered = s.registered();
    // From the first report to the last one before the last piece (the final reports come after
    // the last piece: nothing is left to stop there).
    let points: Vec<u32> = (0..20).map(|point| 1 + point * (reports - 3) / 19).collect();
    let cancel_at = |s: &mut Stress, point: usize, after: u32| {
        let e = match s.switch(target, Some(Trip::after(after))) {
            Err(e) => e,
            Ok(_) => panic!("point {point}: the load ended before report {after} of {reports} stopped it"),
        };
        assert!(e.starts_with("ABORTED: "), "point {point} (report {after}): {e}");
        assert_eq!(s.lifecycle.current().as_deref(), Some(previous), "point {point}");
        assert!(!s.lifecycle.is_loaded(target));
        assert_eq!(s.registered(), registered, "point {point}: the account is unchanged");
    };
    // One cancelled load first, so that nothing in the baseline is a first-time allocation.
    cancel_at(&mut s, 10, points[10]);
    let (baseline, baseline_rss) = (live_bytes(), rss_bytes());
    let started = Instant::now();
    let mut worst = 0.0f64;
    for (point, &after) in points.iter().enumerate() {
        cancel_at(&mut s, point, after);
        worst = worst.max((live_bytes() as f64 / baseline as f64 - 1.0).abs());
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "20 loads of {target} cancelled after 1..{} of its {reports} progress reports: heap {:.2} MiB before, \
         {:.2} MiB after, worst {:.3}% off; RSS {:.1} -> {:.1} MiB; {seconds:.1} s",
        points[19],
        mib(baseline),
        mib(live_bytes()),
        worst * 100.0,
        mib(baseline_rss),
        mib(rss_bytes()),
    );
    assert!(worst <= 0.01, "the heap moved {:.3}% from the baseline", worst * 100.0);
    let cancelled = s.errors().iter().filter(|(name, _)| ErrorCode::Aborted.class().js_name() == name).count();
    assert_eq!(cancelled, 21, "one CancelledError event per cancelled load");
    assert_eq!(ErrorCode::Aborted.class(), ErrorClass::Cancelled);
    // The previous model still generates.
    let model = s.lifecycle.model(previous).unwrap();
    let clock = || 0.0;
    let mut on_token = |_: &hearth::infer::TokenEvent<'_>| true;
    let hooks =
        hearth::infer::session::Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 1 };
    let options =
        hearth::infer::session::GenerateOptions { max_tokens: Some(3), ignore_eos: true, ..Default::default() };
    let out = block_on(model.generate(hearth::infer::session::Prompt::Text("Hello".into()), &options, hooks)).unwrap();
    assert_eq!(out.generated_tokens, 3);
}
