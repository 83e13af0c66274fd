//! The fake engine the manager's tests run on (loads that complete when the test says so,
//! fake byte counts, a status recorder), the catalog entry builder they share, and the harness
//! that drives a lifecycle over them on a single-threaded pool.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;

use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use super::{Cancel, Catalog, CatalogEntry, Engine, EngineError, ManagerError, ModelLifecycle, Resident, Settings};
use crate::error::ErrorCode;
use crate::memory::{AdapterFacts, MIB, MemoryManager, Requirement};
use crate::status::{Metrics, Payload, Recorder, StatusStream};

// ---------------------------------------------------------------------------------------------
// The fake engine

#[derive(Clone, Default)]
pub(crate) struct Flag(pub(crate) Rc<Cell<bool>>);

impl Flag {
    pub(crate) fn cancel(&self) {
        self.0.set(true);
    }
}

impl Cancel for Flag {
    fn is_cancelled(&self) -> bool {
        self.0.get()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FakeError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

impl FakeError {
    pub(crate) fn download(message: &str) -> FakeError {
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
pub(crate) struct ModelState {
    pub(crate) key: String,
    pub(crate) bytes: u64,
    pub(crate) generating: Cell<bool>,
    pub(crate) disposed: Cell<bool>,
    /// The engine's upload counter, given back on dispose.
    pub(crate) uploaded: Rc<Cell<u64>>,
}

#[derive(Clone, Debug)]
pub(crate) struct FakeModel(pub(crate) Rc<ModelState>);

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
    fn backend(&self) -> String {
        "fake".to_owned()
    }
}

pub(crate) struct FakeEngine {
    pub(crate) memory: MemoryManager,
    /// The exact bytes of each model, known once opened.
    pub(crate) bytes: HashMap<String, u64>,
    pub(crate) opened: RefCell<Vec<String>>,
    /// Keys whose open or load fails, with the error.
    pub(crate) open_errors: RefCell<HashMap<String, FakeError>>,
    pub(crate) load_errors: RefCell<HashMap<String, FakeError>>,
    /// Loads that wait (half uploaded) until the test lets them go on.
    pub(crate) gates: RefCell<HashMap<String, oneshot::Receiver<()>>>,
    /// Every load, in the order they started.
    pub(crate) loads: RefCell<Vec<String>>,
    /// Bytes on the fake device now.
    pub(crate) uploaded: Rc<Cell<u64>>,
    pub(crate) generation: Cell<u32>,
    /// Called when a load is half uploaded (device loss mid-load).
    pub(crate) mid_load: RefCell<Option<Box<dyn Fn()>>>,
    pub(crate) metrics_reports: Cell<u32>,
    pub(crate) status: Rc<StatusStream>,
}

impl FakeEngine {
    pub(crate) fn new(bytes: HashMap<String, u64>, status: Rc<StatusStream>) -> FakeEngine {
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
            key,
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
pub(crate) const MODELS: [(&str, u64); 5] = [("a", 100), ("b", 100), ("c", 150), ("big", 400), ("tiny", 10)];

pub(crate) fn entry(key: &str, mib: u64) -> CatalogEntry {
    // The catalog's figure at context 2048: the same as the header's here.
    catalog_entry(key, mib * MIB / 2, Some(mib * MIB))
}

/// A catalog entry for `key` (a llama Q4_0 model at `/models/<key>.gguf` with a 4096 context).
pub(crate) fn catalog_entry(key: &str, file_bytes: u64, required_bytes: Option<u64>) -> CatalogEntry {
    CatalogEntry {
        key: key.to_owned(),
        url: format!("/models/{key}.gguf"),
        sha256: None,
        arch: "llama".to_owned(),
        quant: "Q4_0".to_owned(),
        file_bytes,
        context_length: 4096,
        description: format!("model {key}"),
        required_bytes,
    }
}

pub(crate) struct Harness {
    pub(crate) pool: LocalPool,
    pub(crate) lifecycle: Rc<ModelLifecycle<FakeEngine>>,
    pub(crate) recorder: Recorder,
}

pub(crate) type Slot<T> = Rc<RefCell<Option<T>>>;

impl Harness {
    pub(crate) fn new(budget_mib: u64, settings: Settings) -> Harness {
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

    pub(crate) fn engine(&self) -> &FakeEngine {
        self.lifecycle.engine()
    }

    /// Runs `f` on the pool; its result lands in the slot once it finishes.
    pub(crate) fn spawn<T: 'static>(&self, f: impl Future<Output = T> + 'static) -> Slot<T> {
        let slot: Slot<T> = Rc::default();
        let out = slot.clone();
        self.pool.spawner().spawn_local(async move { *out.borrow_mut() = Some(f.await) }).unwrap();
        slot
    }

    pub(crate) fn run<T: 'static>(&mut self, f: impl Future<Output = T> + 'static) -> T {
        let slot = self.spawn(f);
        self.pool.run_until_stalled();
        slot.borrow_mut().take().expect("the operation finished")
    }

    /// Switches to `key`; the key of the model made current.
    pub(crate) fn switch(&mut self, key: &str) -> Result<String, ManagerError<FakeError>> {
        let f = self.lifecycle.switch(key, None);
        self.run(f).map(|s| s.key)
    }

    /// A load of `key` that waits, half uploaded, until the sender fires.
    pub(crate) fn hold(&self, key: &str) -> oneshot::Sender<()> {
        let (tx, rx) = oneshot::channel();
        self.engine().gates.borrow_mut().insert(key.to_owned(), rx);
        tx
    }

    pub(crate) fn mark(&self) -> usize {
        self.recorder.events().len()
    }

    pub(crate) fn infos_since(&self, mark: usize) -> Vec<String> {
        self.recorder.events()[mark..]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Info(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    /// The error events since `mark`: (name, message, key).
    pub(crate) fn errors_since(&self, mark: usize) -> Vec<(String, String, Option<String>)> {
        self.recorder.events()[mark..]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Error(info) => Some((info.name.clone(), info.message.clone(), e.model_key.clone())),
                _ => None,
            })
            .collect()
    }

    /// The events since `mark` as (kind, text): info messages, error names, "metrics".
    pub(crate) fn timeline_since(&self, mark: usize) -> Vec<String> {
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

    pub(crate) fn loaded_keys(&self) -> Vec<String> {
        self.lifecycle.resident().into_iter().map(|r| r.account.key).collect()
    }
}

pub(crate) fn roomy() -> Harness {
    Harness::new(1024, Settings::default())
}
