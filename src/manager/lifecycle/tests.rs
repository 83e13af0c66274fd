//! Every ModelManager scenario the page tests cover, natively, over a fake engine: loads that
//! complete when the test says so, fake byte counts, a status recorder.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use super::*;
use crate::error::{ErrorClass, ErrorCode};
use crate::manager::EngineError;
use crate::manager::{Catalog, CatalogEntry};
use crate::memory::{AdapterFacts, MIB, MemoryManager, Requirement};
use crate::status::{Metrics, Payload, Recorder, StatusStream};

// ---------------------------------------------------------------------------------------------
// The fake engine

#[derive(Clone, Default)]
struct Flag(Rc<Cell<bool>>);

impl Flag {
    fn cancel(&self) {
        self.0.set(true);
    }
}

impl Cancel for Flag {
    fn is_cancelled(&self) -> bool {
        self.0.get()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct FakeError {
    code: ErrorCode,
    message: String,
}

impl FakeError {
    fn download(message: &str) -> FakeError {
        FakeError { code: ErrorCode::HttpStatus, message: message.into() }
    }
}

impl EngineError for FakeError {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn message(&self) -> String {
        self.message.clone()
    }
}

#[derive(Debug)]
struct ModelState {
    bytes: u64,
    generating: Cell<bool>,
    disposed: Cell<bool>,
    /// The engine's upload counter, given back on dispose.
    uploaded: Rc<Cell<u64>>,
}

#[derive(Clone, Debug)]
struct FakeModel(Rc<ModelState>);

impl Resident for FakeModel {
    fn resident_bytes(&self) -> u64 {
        self.0.bytes
    }
    fn is_generating(&self) -> bool {
        self.0.generating.get()
    }
    fn is_disposed(&self) -> bool {
        self.0.disposed.get()
    }
    fn dispose(&self) {
        if !self.0.disposed.replace(true) {
            self.0.uploaded.set(self.0.uploaded.get() - self.0.bytes);
        }
    }
}

struct FakeEngine {
    memory: MemoryManager,
    /// The exact bytes of each model, known once opened.
    bytes: HashMap<String, u64>,
    opened: RefCell<Vec<String>>,
    /// Keys whose open or load fails, with the error.
    open_errors: RefCell<HashMap<String, FakeError>>,
    load_errors: RefCell<HashMap<String, FakeError>>,
    /// Loads that wait (half uploaded) until the test lets them go on.
    gates: RefCell<HashMap<String, oneshot::Receiver<()>>>,
    /// Every load, in the order they started.
    loads: RefCell<Vec<String>>,
    /// Bytes on the fake device now.
    uploaded: Rc<Cell<u64>>,
    generation: Cell<u32>,
    /// Called when a load is half uploaded (device loss mid-load).
    mid_load: RefCell<Option<Box<dyn Fn()>>>,
    metrics_reports: Cell<u32>,
    status: Rc<StatusStream>,
}

impl FakeEngine {
    fn new(bytes: HashMap<String, u64>, status: Rc<StatusStream>) -> FakeEngine {
        FakeEngine {
            memory: MemoryManager::new(&AdapterFacts::default()),
            bytes,
            opened: RefCell::default(),
            open_errors: RefCell::default(),
            load_errors: RefCell::default(),
            gates: RefCell::default(),
            loads: RefCell::default(),
            uploaded: Rc::default(),
            generation: Cell::new(0),
            mid_load: RefCell::default(),
            metrics_reports: Cell::new(0),
            status,
        }
    }
}

impl Engine for FakeEngine {
    type Model = FakeModel;
    type Error = FakeError;
    type Signal = Flag;

    fn memory(&self) -> &MemoryManager {
        &self.memory
    }

    fn report_memory(&self, key: Option<&str>) {
        self.metrics_reports.set(self.metrics_reports.get() + 1);
        self.status.metrics(Metrics { used_bytes: self.memory.registered_bytes(), ..Metrics::default() }, key);
    }

    fn exact_requirement(&self, entry: &CatalogEntry, context: u32) -> Option<Requirement> {
        if !self.opened.borrow().contains(&entry.key) {
            return None;
        }
        Some(Requirement::precomputed(self.bytes[&entry.key], context))
    }

    async fn open(&self, entry: &CatalogEntry, _signal: Option<&Flag>) -> Result<(), FakeError> {
        if let Some(e) = self.open_errors.borrow().get(&entry.key) {
            return Err(e.clone());
        }
        if !self.opened.borrow().contains(&entry.key) {
            self.opened.borrow_mut().push(entry.key.clone());
        }
        Ok(())
    }

    async fn load(&self, entry: &CatalogEntry, _context: u32, signal: Option<&Flag>) -> Result<FakeModel, FakeError> {
        let key = entry.key.clone();
        self.loads.borrow_mut().push(key.clone());
        if let Some(e) = self.load_errors.borrow().get(&key) {
            return Err(e.clone());
        }
        let bytes = self.bytes[&key];
        let half = bytes / 2;
        self.uploaded.set(self.uploaded.get() + half);
        if let Some(f) = &*self.mid_load.borrow() {
            f();
        }
        let gate = self.gates.borrow_mut().remove(&key);
        if let Some(gate) = gate {
            let _ = gate.await;
        }
        if signal.is_some_and(Cancel::is_cancelled) {
            // What was uploaded is freed.
            self.uploaded.set(self.uploaded.get() - half);
            return Err(FakeError { code: ErrorCode::Aborted, message: format!("Loading {key} was cancelled.") });
        }
        self.uploaded.set(self.uploaded.get() + (bytes - half));
        Ok(FakeModel(Rc::new(ModelState {
            bytes,
            generating: Cell::new(false),
            disposed: Cell::new(false),
            uploaded: self.uploaded.clone(),
        })))
    }

    async fn recover(&self) -> Result<u32, FakeError> {
        self.generation.set(self.generation.get() + 1);
        Ok(self.generation.get())
    }
}

// ---------------------------------------------------------------------------------------------
// The harness

/// Five models: a (100 MiB), b (100 MiB), c (150 MiB), big (400 MiB), tiny (10 MiB).
const MODELS: [(&str, u64); 5] = [("a", 100), ("b", 100), ("c", 150), ("big", 400), ("tiny", 10)];

fn entry(key: &str, mib: u64) -> CatalogEntry {
    CatalogEntry {
        key: key.to_owned(),
        url: format!("/models/{key}.gguf"),
        sha256: None,
        arch: "llama".to_owned(),
        quant: "Q4_0".to_owned(),
        file_bytes: mib * MIB / 2,
        context_length: 4096,
        description: format!("model {key}"),
        // The catalog's figure at context 2048: the same as the header's here.
        required_bytes: Some(mib * MIB),
    }
}

struct Harness {
    pool: LocalPool,
    lifecycle: Rc<ModelLifecycle<FakeEngine>>,
    recorder: Recorder,
}

type Slot<T> = Rc<RefCell<Option<T>>>;

impl Harness {
    fn new(budget_mib: u64, settings: Settings) -> Harness {
        let mut catalog = Catalog::default();
        let mut bytes = HashMap::new();
        for (key, mib) in MODELS {
            catalog.register(entry(key, mib), true).unwrap();
            bytes.insert(key.to_owned(), mib * MIB);
        }
        let recorder = Recorder::new();
        let status = Rc::new(StatusStream::with_sink(Box::new(recorder.clone())));
        let engine = FakeEngine::new(bytes, status.clone());
        engine.memory.set_budget_bytes(budget_mib * MIB);
        let lifecycle = ModelLifecycle::new(engine, status, catalog, settings, 0);
        Harness { pool: LocalPool::new(), lifecycle, recorder }
    }

    fn engine(&self) -> &FakeEngine {
        self.lifecycle.engine()
    }

    /// Runs `f` on the pool; its result lands in the slot once it finishes.
    fn spawn<T: 'static>(&self, f: impl Future<Output = T> + 'static) -> Slot<T> {
        let slot: Slot<T> = Rc::default();
        let out = slot.clone();
        self.pool.spawner().spawn_local(async move { *out.borrow_mut() = Some(f.await) }).unwrap();
        slot
    }

    fn run<T: 'static>(&mut self, f: impl Future<Output = T> + 'static) -> T {
        let slot = self.spawn(f);
        self.pool.run_until_stalled();
        slot.borrow_mut().take().expect("the operation finished")
    }

    /// Switches to `key`; the key of the model made current.
    fn switch(&mut self, key: &str) -> Result<String, ManagerError<FakeError>> {
        let f = self.lifecycle.switch(key, None);
        self.run(f).map(|s| s.key)
    }

    /// A load of `key` that waits, half uploaded, until the sender fires.
    fn hold(&self, key: &str) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.engine().gates.borrow_mut().insert(key.to_owned(), rx);
        tx
    }

    fn mark(&self) -> usize {
        self.recorder.events().len()
    }

    fn infos_since(&self, mark: usize) -> Vec<String> {
        self.recorder.events()[mark..]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Info(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// The error events since `mark`: (name, message, key).
    fn errors_since(&self, mark: usize) -> Vec<(String, String, Option<String>)> {
        self.recorder.events()[mark..]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Error(info) => Some((info.name.clone(), info.message.clone(), e.model_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The events since `mark` as (kind, text): info messages, error names, "metrics".
    fn timeline_since(&self, mark: usize) -> Vec<String> {
        self.recorder.events()[mark..]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Info(m) => Some(m.clone()),
                Payload::Error(info) => Some(format!("error {}: {}", info.name, info.message)),
                Payload::Metrics(_) => Some("metrics".to_owned()),
                _ => None,
            })
            .collect()
    }

    fn loaded_keys(&self) -> Vec<String> {
        self.lifecycle.resident().into_iter().map(|r| r.account.key).collect()
    }
}

fn roomy() -> Harness {
    Harness::new(1024, Settings::default())
}

// ---------------------------------------------------------------------------------------------
// Switching

#[test]
fn switch_tells_the_seed_sequence_and_registers_the_model() {
    let mut h = roomy();
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(h.infos_since(mark), ["Checking memory for a...", "Loading model a...", "Model a loaded successfully."]);
    assert!(h.recorder.events()[mark..].iter().all(|e| e.model_key.as_deref() == Some("a")));
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert!(h.lifecycle.is_ready());
    assert_eq!(h.lifecycle.loading(), None);
    assert_eq!(h.engine().memory.registered_bytes(), 100 * MIB);
    assert_eq!(h.engine().metrics_reports.get(), 1, "one metrics report, after the register");
    let resident = h.lifecycle.resident();
    assert_eq!(resident.len(), 1);
    assert!(resident[0].current);
    assert_eq!(resident[0].account.bytes, 100 * MIB);
}

#[test]
fn switching_to_the_loaded_model_only_touches_it() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(h.timeline_since(mark), ["Model a is already loaded."]);
    assert_eq!(*h.engine().loads.borrow(), ["a", "b"], "nothing loaded again");
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    // Touched: a is now the most recently used.
    assert_eq!(h.loaded_keys(), ["b", "a"]);
}

#[test]
fn unknown_key_is_a_catalog_error_that_tells_nothing() {
    let mut h = roomy();
    let mark = h.mark();
    let e = h.switch("nope").unwrap_err();
    assert!(matches!(&e, ManagerError::Catalog(crate::manager::CatalogError::Unknown { key, .. }) if key == "nope"));
    assert_eq!(e.code(), ErrorCode::UnknownModel);
    assert_eq!(e.class(), ErrorClass::InvalidInput);
    assert!(h.recorder.events()[mark..].is_empty());
    assert!(h.loaded_keys().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Eviction, refusal, fallback

#[test]
fn eviction_unloads_the_least_recently_used_model_and_only_that() {
    // a + c fit side by side, a + b + c do not.
    let mut h = Harness::new(260, Settings::default());
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.switch("a").unwrap(); // b is now the least recently used
    let mark = h.mark();
    h.switch("c").unwrap();
    assert_eq!(
        h.infos_since(mark),
        [
            "Checking memory for c...",
            "Unloading b to make room for c.",
            "Model b unloaded.",
            "Loading model c...",
            "Model c loaded successfully."
        ]
    );
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
    assert_eq!(h.engine().uploaded.get(), 250 * MIB, "b's bytes were freed");
}

#[test]
fn eviction_spares_pinned_and_generating_models() {
    let mut h = Harness::new(260, Settings::default());
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.engine().memory.pin("a");
    h.lifecycle.model("b").unwrap().0.generating.set(true);
    let mark = h.mark();
    let e = h.switch("c").unwrap_err();
    assert!(matches!(e, ManagerError::DoesNotFit { .. }), "{e:?}");
    assert!(!h.infos_since(mark).iter().any(|m| m.starts_with("Unloading")));
    assert_eq!(h.loaded_keys().len(), 2);
    // Once b is idle, it is the one to go (a stays pinned).
    h.lifecycle.model("b").unwrap().0.generating.set(false);
    h.switch("c").unwrap();
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
}

#[test]
fn refusal_is_a_does_not_fit_error_with_figures_and_suggestions() {
    let mut h = Harness::new(256, Settings::default());
    let mark = h.mark();
    let e = h.switch("big").unwrap_err();
    let ManagerError::DoesNotFit { key, reason, required_bytes, available_bytes, suggestions, message } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(key, "big");
    assert_eq!(*required_bytes, 400 * MIB);
    assert_eq!(*available_bytes, 256 * MIB);
    assert_eq!(reason, "Not enough VRAM (available: 256 MB, required: 400 MB)");
    // Models that fit in 256 MB, largest first.
    let keys: Vec<&str> = suggestions.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["c", "a", "b", "tiny"]);
    assert_eq!(
        *message,
        "Cannot load big: Not enough VRAM (available: 256 MB, required: 400 MB). Models that fit: c, a, b, tiny."
    );
    assert_eq!((e.class(), e.code()), (ErrorClass::ModelLoad, ErrorCode::NotEnoughMemory));
    assert_eq!(
        h.timeline_since(mark),
        ["Checking memory for big...".to_owned(), format!("error ModelLoadError: {message}")]
    );
    assert!(h.engine().loads.borrow().is_empty());
    assert_eq!(h.lifecycle.current(), None);
    // canLoadModel says the same, exactly (the header was read).
    let fit = h.lifecycle.fit("big").unwrap();
    assert!(!fit.can_load.can && fit.exact);
    assert_eq!(fit.suggestions, *suggestions);
}

#[test]
fn refusal_without_eviction_when_eviction_is_off() {
    let mut h = Harness::new(260, Settings { evict: false, ..Settings::default() });
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    let e = h.switch("c").unwrap_err();
    assert!(matches!(e, ManagerError::DoesNotFit { .. }), "{e:?}");
    assert_eq!(h.loaded_keys(), ["a", "b"]);
}

#[test]
fn auto_fallback_loads_the_best_suggestion_and_says_so() {
    let mut h = Harness::new(256, Settings { auto_fallback: true, ..Settings::default() });
    let mark = h.mark();
    assert_eq!(h.switch("big").unwrap(), "c");
    assert_eq!(
        h.timeline_since(mark).into_iter().filter(|m| m != "metrics").collect::<Vec<_>>(),
        [
            "Checking memory for big...",
            "error ModelLoadError: Cannot load big: Not enough VRAM (available: 256 MB, required: 400 MB). Models that fit: c, a, b, tiny. Loading c instead.",
            "Falling back to c (fits: 150 MB).",
            "Checking memory for c...",
            "Loading model c...",
            "Model c loaded successfully.",
        ]
    );
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
}

#[test]
fn auto_fallback_after_a_failed_load_but_not_after_invalid_input() {
    let mut h = Harness::new(1024, Settings { auto_fallback: true, ..Settings::default() });
    h.engine().load_errors.borrow_mut().insert("big".into(), FakeError::download("HTTP 404"));
    let mark = h.mark();
    assert_eq!(h.switch("big").unwrap(), "c");
    let infos = h.infos_since(mark);
    assert!(infos.contains(&"Falling back to c.".to_owned()), "{infos:?}");
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));

    h.engine()
        .open_errors
        .borrow_mut()
        .insert("tiny".into(), FakeError { code: ErrorCode::NoModelSource, message: "no source".into() });
    let e = h.switch("tiny").unwrap_err();
    assert!(
        matches!(&e, ManagerError::LoadFailed { failure: LoadFailure::Engine(f), .. } if f.code == ErrorCode::NoModelSource)
    );
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"), "no fallback for invalid input");
}

// ---------------------------------------------------------------------------------------------
// The operation chain

#[test]
fn concurrent_same_key_calls_share_one_load() {
    let mut h = roomy();
    let gate = h.hold("a");
    let one = h.spawn(h.lifecycle.switch("a", None));
    let two = h.spawn(h.lifecycle.switch("a", None));
    h.pool.run_until_stalled();
    assert_eq!(h.lifecycle.loading().as_deref(), Some("a"));
    assert!(!h.lifecycle.is_ready());
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let (one, two) = (one.borrow_mut().take().unwrap().unwrap(), two.borrow_mut().take().unwrap().unwrap());
    assert_eq!((one.key.as_str(), two.key.as_str()), ("a", "a"));
    assert!(Rc::ptr_eq(&one.model.0, &two.model.0), "both callers got the one model");
    assert_eq!(*h.engine().loads.borrow(), ["a"]);
    assert_eq!(h.recorder.infos().iter().filter(|m| *m == "Loading model a...").count(), 1);
}

#[test]
fn different_keys_run_in_call_order_and_a_failure_leaves_the_state_consistent() {
    let mut h = roomy();
    h.engine().open_errors.borrow_mut().insert("b".into(), FakeError::download("HTTP 404 for /models/b.gguf"));
    let gate = h.hold("a");
    let calls = [
        h.spawn(h.lifecycle.switch("a", None)),
        h.spawn(h.lifecycle.switch("a", None)),
        h.spawn(h.lifecycle.switch("b", None)),
        h.spawn(h.lifecycle.switch("c", None)),
    ];
    h.pool.run_until_stalled();
    // Nothing after a starts before a is done.
    assert_eq!(h.recorder.infos(), ["Checking memory for a...", "Loading model a..."]);
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let results: Vec<_> = calls.iter().map(|s| s.borrow_mut().take().unwrap()).collect();
    let key = |n: usize| results[n].as_ref().map(|s| s.key.as_str()).unwrap();
    assert_eq!((key(0), key(1), key(3)), ("a", "a", "c"));
    let e = results[2].as_ref().unwrap_err();
    let ManagerError::LoadFailed { key, failure: LoadFailure::Engine(f), suggestions } = e else { panic!("{e:?}") };
    assert_eq!(key, "b");
    assert_eq!(f.code.class().js_name(), "DownloadError");
    assert!(!suggestions.is_empty());
    let infos = h.recorder.infos();
    let at = |m: &str| infos.iter().position(|i| i == m).unwrap_or_else(|| panic!("{m}: {infos:?}"));
    assert!(at("Model a loaded successfully.") < at("Checking memory for b..."));
    assert!(at("Checking memory for b...") < at("Checking memory for c..."));
    assert_eq!(
        h.errors_since(0),
        [(
            "DownloadError".to_owned(),
            "Failed to load b: HTTP 404 for /models/b.gguf".to_owned(),
            Some("b".to_owned())
        )]
    );
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
    assert_eq!(h.engine().memory.registered_bytes(), 250 * MIB);
}

#[test]
fn a_failed_load_registers_nothing_and_keeps_the_previous_model_current() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.engine().load_errors.borrow_mut().insert("b".into(), FakeError::download("connection reset"));
    let e = h.switch("b").unwrap_err();
    assert_eq!(e.error_info().message, "Failed to load b: connection reset");
    assert_eq!(e.message(), "connection reset", "the error keeps the engine's own message");
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!(h.engine().memory.registered_bytes(), 100 * MIB);
    assert_eq!(h.lifecycle.loading(), None);
}

// ---------------------------------------------------------------------------------------------
// Cancellation

#[test]
fn cancellation_mid_load_frees_the_upload_and_keeps_the_previous_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    let baseline = (h.engine().uploaded.get(), h.engine().memory.registered_bytes());
    let flag = Flag::default();
    let gate = h.hold("b");
    let mark = h.mark();
    let out = h.spawn(h.lifecycle.switch("b", Some(flag.clone())));
    h.pool.run_until_stalled();
    assert!(h.engine().uploaded.get() > baseline.0, "half of b is on the device");
    flag.cancel();
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let e = out.borrow_mut().take().unwrap().unwrap_err();
    assert!(e.is_cancelled(), "{e:?}");
    let message = "Loading b was cancelled while loading; a is still the current model.";
    assert_eq!(e.message(), message);
    assert_eq!((e.class(), e.code()), (ErrorClass::Cancelled, ErrorCode::Aborted));
    assert_eq!(h.errors_since(mark), [("CancelledError".to_owned(), message.to_owned(), Some("b".to_owned()))]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!((h.engine().uploaded.get(), h.engine().memory.registered_bytes()), baseline, "memory back at baseline");
}

#[test]
fn cancellation_before_the_load_starts_tells_it_and_loads_nothing() {
    let mut h = roomy();
    let flag = Flag::default();
    flag.cancel();
    let f = h.lifecycle.switch("a", Some(flag));
    let e = h.run(f).unwrap_err();
    assert_eq!(e.message(), "Loading a was cancelled before it started.");
    assert!(h.engine().loads.borrow().is_empty());
    assert_eq!(h.errors_since(0).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Preload, unload, tasks

#[test]
fn preload_waits_for_running_tasks_and_does_not_change_the_current_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.lifecycle.task_started();
    h.lifecycle.task_started();
    assert_eq!(h.lifecycle.tasks_running(), 2);
    let preload = h.spawn(h.lifecycle.preload("b", None));
    h.pool.run_until_stalled();
    assert!(preload.borrow().is_none());
    assert_eq!(*h.engine().loads.borrow(), ["a"], "the preload waits");
    // A task's own switch is not stuck behind the waiting preload.
    assert_eq!(h.switch("a").unwrap(), "a");
    h.lifecycle.task_finished();
    h.pool.run_until_stalled();
    assert!(preload.borrow().is_none(), "one task still runs");
    h.lifecycle.task_finished();
    h.pool.run_until_stalled();
    assert_eq!(preload.borrow_mut().take().unwrap().unwrap().key, "b");
    assert_eq!(h.lifecycle.tasks_running(), 0);
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert!(h.lifecycle.is_loaded("b"));
}

#[test]
fn task_accounting_never_goes_below_zero() {
    let h = roomy();
    h.lifecycle.task_finished();
    assert_eq!(h.lifecycle.tasks_running(), 0);
    h.lifecycle.task_started();
    assert_eq!(h.lifecycle.tasks_running(), 1);
    h.lifecycle.task_finished();
    assert_eq!(h.lifecycle.tasks_running(), 0);
}

#[test]
fn unload_returns_the_memory_and_refuses_a_generating_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.lifecycle.model("a").unwrap().0.generating.set(true);
    let f = h.lifecycle.unload("a");
    let e = h.run(f).unwrap_err();
    assert!(matches!(&e, ManagerError::Busy { key, with: BusyWith::Generating } if key == "a"));
    assert_eq!(e.code(), ErrorCode::ModelBusy);
    h.lifecycle.model("a").unwrap().0.generating.set(false);
    let mark = h.mark();
    let f = h.lifecycle.unload("b");
    assert!(h.run(f).unwrap());
    assert_eq!(h.timeline_since(mark), ["metrics", "Model b unloaded."]);
    assert_eq!(h.lifecycle.current(), None, "b was current");
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!(h.engine().uploaded.get(), 100 * MIB);
    let f = h.lifecycle.unload("b");
    assert!(!h.run(f).unwrap(), "not resident any more");
}

#[test]
fn a_model_disposed_behind_the_lifecycles_back_is_forgotten() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.lifecycle.model("a").unwrap().dispose();
    assert!(!h.lifecycle.is_loaded("a"));
    assert!(h.loaded_keys().is_empty());
    assert_eq!(h.engine().memory.registered_bytes(), 0);
    h.switch("a").unwrap();
    assert_eq!(*h.engine().loads.borrow(), ["a", "a"]);
}

#[test]
fn registering_an_entry_is_refused_while_its_model_loads() {
    let mut h = roomy();
    let gate = h.hold("a");
    let _load = h.spawn(h.lifecycle.switch("a", None));
    h.pool.run_until_stalled();
    let e = h.lifecycle.register(entry("a", 50), true).unwrap_err();
    assert!(matches!(e, ManagerError::Busy { with: BusyWith::Loading, .. }));
    assert!(e.message().starts_with("registerModel: a is being loaded"));
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    h.lifecycle.register(entry("a", 50), true).unwrap();
    let bad = CatalogEntry { key: "x y".into(), ..entry("x", 1) };
    let e = h.lifecycle.register(bad, true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidCatalogEntry);
}

#[test]
fn check_reads_the_header_so_the_figures_become_exact() {
    let mut h = roomy();
    let before = h.lifecycle.fit("a").unwrap();
    assert!(!before.exact && before.can_load.can);
    let f = {
        let l = h.lifecycle.clone();
        async move { l.check("a", None).await }
    };
    let after = h.run(f).unwrap();
    assert!(after.exact);
    assert_eq!(after.can_load.required_bytes, 100 * MIB);
    let rows = h.lifecycle.catalog_rows();
    let row = rows.iter().find(|r| r.entry.key == "a").unwrap();
    assert!(row.exact && !row.loaded);
}

// ---------------------------------------------------------------------------------------------
// Device loss

#[test]
fn device_loss_empties_everything_and_the_next_switch_recovers() {
    let mut h = roomy();
    h.switch("a").unwrap();
    let f = h.lifecycle.preload("b", None);
    h.run(f).unwrap();
    let mark = h.mark();
    h.lifecycle.device_lost(0, "Destroyed: device destroyed");
    h.lifecycle.device_lost(0, "Destroyed: again"); // a second report is ignored
    assert_eq!(h.errors_since(mark), [(
        "DeviceLostError".to_owned(),
        "The GPU device was lost (Destroyed: device destroyed). Every model on it was unloaded: a, b. The next load re-creates the device.".to_owned(),
        None
    )]);
    assert!(h.lifecycle.is_lost());
    assert_eq!(h.lifecycle.current(), None);
    assert!(h.loaded_keys().is_empty());
    assert!(!h.lifecycle.is_ready());
    assert_eq!(h.engine().memory.registered_bytes(), 0);
    assert_eq!(h.engine().uploaded.get(), 0);
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(
        h.infos_since(mark),
        [
            "Re-created the WebGPU device after the loss (generation 1).",
            "Checking memory for a...",
            "Loading model a...",
            "Model a loaded successfully."
        ]
    );
    assert!(!h.lifecycle.is_lost());
    // A late report about the old device changes nothing.
    h.lifecycle.device_lost(0, "late");
    assert!(h.lifecycle.is_loaded("a"));
}

#[test]
fn device_loss_during_a_load_fails_it_without_fallback() {
    let mut h = Harness::new(1024, Settings { auto_fallback: true, ..Settings::default() });
    let lifecycle = Rc::downgrade(&h.lifecycle);
    *h.engine().mid_load.borrow_mut() = Some(Box::new(move || {
        if let Some(l) = lifecycle.upgrade() {
            l.device_lost(0, "Destroyed");
        }
    }));
    let e = h.switch("a").unwrap_err();
    assert!(matches!(e, ManagerError::LoadFailed { failure: LoadFailure::DeviceLost, .. }), "{e:?}");
    assert_eq!((e.class(), e.code()), (ErrorClass::DeviceLost, ErrorCode::DeviceLost));
    assert_eq!(e.message(), "The GPU device was lost while a was loading; load it again to use a new device.");
    assert!(h.loaded_keys().is_empty());
    assert_eq!(h.engine().uploaded.get(), 0, "the half-loaded model was disposed");
    *h.engine().mid_load.borrow_mut() = None;
    assert_eq!(h.switch("a").unwrap(), "a", "the next switch recovers");
}

#[test]
fn device_loss_with_nothing_loaded_says_so() {
    let h = roomy();
    h.lifecycle.device_lost(0, "Destroyed");
    let errors = h.errors_since(0);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1.contains("No model was loaded."), "{errors:?}");
}
