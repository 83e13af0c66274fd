//! A `ModelManager`'s options as an app passes them: the plain fields, checked here (the
//! streamer, memory manager, backend and catalog are read by the web layer).

use serde::Deserialize;

use super::Settings;
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
