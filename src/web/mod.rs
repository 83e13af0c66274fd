//! The browser layer: the only place with `#[wasm_bindgen]`. It converts JS
//! values into core types, core errors into JS `Error` subclasses (`error`), and
//! implements the status sink with a DOM `EventTarget` (`streamer`).

mod cache;
mod convert;
mod device;
mod error;
mod executor;
mod gguf;
mod manager;
mod memory;
mod model;
mod shard;
mod source;
mod streamer;
mod types;

pub use device::{Preference, acquire, check_device, init_device};
pub use error::{ErrorClass, JsError};
pub use executor::{TaskExecutor, TaskHandle};
pub use gguf::{GgufFile, Tokenizer};
pub use manager::ModelManager;
pub use memory::MemoryManager;
pub use model::LanguageModel;
pub use shard::ShardWorker;
pub use streamer::SseStreamer;
pub use types::{BackendArg, ReplayOptionsArg, StreamerOptionsArg};

use wasm_bindgen::prelude::*;

unsafe extern "C" {
    /// Synthesised by wasm-ld: runs the static constructors (`.init_array`), which
    /// burn's dependencies use (pliron registers its IR through `inventory`).
    fn __wasm_call_ctors();
}

/// Runs the static constructors exactly once.
///
/// Without an explicit call, wasm-ld turns the module into a "new-style command"
/// and wraps *every* export in a call to `__wasm_call_ctors`: each JS-to-wasm
/// call re-ran all of pliron's registrations, about 1 ms per call (measured:
/// `version()` 0.9 ms, 49k-token metadata 17 s). One explicit call in the input
/// turns the wrapping off (LLVM D81689; see dtolnay/inventory's wasm notes).
pub fn ensure_static_constructors() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static DONE: AtomicBool = AtomicBool::new(false);
    if !DONE.swap(true, Ordering::SeqCst) {
        // SAFETY: the linker's constructor list, run once before any code that
        // depends on it (the module start function, or the first device use).
        unsafe { __wasm_call_ctors() }
    }
}

/// Runs when the module is instantiated: static constructors, then the panic
/// hook, so panics are logged with their message instead of an opaque
/// `unreachable` (a panic still poisons the instance, which is why nothing in
/// this layer is meant to panic).
#[wasm_bindgen(start)]
pub fn start() {
    ensure_static_constructors();
    console_error_panic_hook::set_once();
}

/// The library version, from Cargo.toml.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
