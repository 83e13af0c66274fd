//! The browser layer: the only place with `#[wasm_bindgen]`. It converts JS
//! values into core types, core errors into JS `Error` subclasses (`error`), and
//! implements the status sink with a DOM `EventTarget` (`streamer`).

mod device;
mod error;
mod gguf;
mod source;
mod streamer;
mod types;

pub use device::{Preference, acquire, check_device, init_device};
pub use error::{ErrorClass, JsError};
pub use gguf::{GgufFile, Tokenizer};
pub use streamer::SseStreamer;
pub use types::{BackendArg, ReplayOptionsArg, StreamerOptionsArg};

use wasm_bindgen::prelude::*;

/// Runs when the module is instantiated: panics are logged with their message
/// instead of an opaque `unreachable` (a panic still poisons the instance, which
/// is why nothing in this layer is meant to panic).
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The library version, from Cargo.toml.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
