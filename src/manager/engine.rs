//! What the [`super::ModelLifecycle`] runs on: an [`Engine`] that opens and loads models, the
//! [`Resident`] models it returns, and the [`Cancel`] token a load is given.
//!
//! The browser implements them in the web layer (URL, `File` and OPFS sources, `LanguageModel`,
//! `AbortSignal`); the lifecycle's tests implement them with a fake.

use crate::memory::{MemoryManager, Requirement};

use super::catalog::CatalogEntry;
use super::error::EngineError;

/// A cancellation token: the web layer's `AbortSignal`, a flag in tests.
pub trait Cancel: Clone + 'static {
    fn is_cancelled(&self) -> bool;
}

/// A loaded model as the lifecycle handles it (a cheap handle on the shared model).
pub trait Resident: Clone + 'static {
    /// Device (or host) bytes it holds, measured at load.
    fn resident_bytes(&self) -> u64;
    /// Whether it is generating now (eviction and unload spare it).
    fn is_generating(&self) -> bool;
    /// Whether it was disposed behind the lifecycle's back (the lifecycle forgets it).
    fn is_disposed(&self) -> bool;
    /// Frees what it holds.
    fn dispose(&self);
    /// Where it runs, as `loadedModels()` says it (`webgpu: <adapter>`, `cpu ...`).
    fn backend(&self) -> String;
}

/// What opens, loads and re-creates the device for the lifecycle: the browser's loader over
/// the network, a `File` and the model cache, or a fake in tests.
///
/// The futures are not `Send`: the lifecycle is single-threaded, as the browser is.
#[allow(async_fn_in_trait)]
pub trait Engine: 'static {
    type Model: Resident;
    type Error: EngineError;
    type Signal: Cancel;

    /// The memory account models are checked against and registered with.
    fn memory(&self) -> &MemoryManager;

    /// A timestamp for `lastUsed`, in ms.
    fn now_ms(&self) -> Option<f64> {
        None
    }

    /// Tells the account (a `metrics` event), after it changed for `key`.
    fn report_memory(&self, key: Option<&str>);

    /// `key` left the account (its model is disposed right after): tells it (the browser
    /// engine measures once more when the device has handed the buffers back).
    fn released(&self, key: &str) {
        self.report_memory(Some(key));
    }

    /// The device was lost: stop using it (no more measurements on it).
    fn device_lost(&self) {}

    /// The exact requirement of `entry` at `context`, once [`Self::open`] read its header;
    /// `None` before (the catalog's estimate stands in).
    fn exact_requirement(&self, entry: &CatalogEntry, context: u32) -> Option<Requirement>;

    /// Reads `entry`'s header (no weights) and keeps it for [`Self::exact_requirement`] and
    /// [`Self::load`]; a second call for the same source returns at once.
    async fn open(&self, entry: &CatalogEntry, signal: Option<&Self::Signal>) -> Result<(), Self::Error>;

    /// Loads `entry` (opened before) at `context`, telling progress on the status stream. A
    /// cancelled or failed load frees what it uploaded.
    async fn load(
        &self,
        entry: &CatalogEntry,
        context: u32,
        signal: Option<&Self::Signal>,
    ) -> Result<Self::Model, Self::Error>;

    /// Re-creates the device after a loss; returns its generation.
    async fn recover(&self) -> Result<u32, Self::Error>;
}

/// A model the browser loaded: shared between the lifecycle and the JS handles on it.
impl Resident for std::rc::Rc<crate::infer::session::LoadedModel> {
    fn resident_bytes(&self) -> u64 {
        self.info().resident_bytes as u64
    }

    fn is_generating(&self) -> bool {
        self.is_busy()
    }

    fn is_disposed(&self) -> bool {
        crate::infer::session::LoadedModel::is_disposed(self)
    }

    fn dispose(&self) {
        crate::infer::session::LoadedModel::dispose(self);
    }

    fn backend(&self) -> String {
        self.info().backend.clone()
    }
}
