//! A `ModelManager`'s options as an app passes them (the plain fields, checked here; the
//! streamer, memory manager, backend and catalog are read by the web layer), and its resident
//! models as `loadedModels()` lists them.

use serde::{Deserialize, Serialize};

use super::{ResidentModel, Settings};
use crate::input::InputError;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagerOptions {
    pub context_length: Option<u32>,
    pub auto_fallback: bool,
    pub evict: Option<bool>,
    pub cache: Option<bool>,
    pub device_memory_gb: Option<f64>,
}

impl ManagerOptions {
    /// How the lifecycle behaves: eviction on unless turned off; a zero context is refused.
    pub fn settings(&self) -> Result<Settings, InputError> {
        if self.context_length == Some(0) {
            return Err(InputError::options("contextLength must be at least 1."));
        }
        let evict = self.evict.unwrap_or(true);
        Ok(Settings { context_length: self.context_length, auto_fallback: self.auto_fallback, evict })
    }

    /// Whether model files go through the browser's model cache (on unless turned off).
    pub fn use_cache(&self) -> bool {
        self.cache.unwrap_or(true)
    }
}

/// A resident model as `loadedModels()` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadedRow {
    pub key: String,
    pub bytes: u64,
    pub current: bool,
    pub pinned: bool,
    pub last_used: Option<f64>,
    /// Where it runs, as the model says (`webgpu` or `cpu`).
    pub backend: String,
}

impl<M> ResidentModel<M> {
    /// Its row, running on `backend`.
    pub fn row(self, backend: String) -> LoadedRow {
        let a = self.account;
        LoadedRow {
            key: a.key,
            bytes: a.bytes,
            current: self.current,
            pinned: a.pinned,
            last_used: a.last_used,
            backend,
        }
    }
}
