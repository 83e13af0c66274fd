//! The parts of `hearth` that read untrusted file bytes, compiled from the main crate's sources
//! (`#[path]`) so the fuzzer builds in seconds without burn. The modules are plain `std` Rust and
//! refer to each other as `crate::gguf`, `crate::model` and `crate::error`, as in the main crate.

#[path = "../../src/error.rs"]
pub mod error;
#[path = "../../src/gguf/mod.rs"]
pub mod gguf;
#[path = "../../src/model/mod.rs"]
pub mod model;
#[path = "../../src/tokenizer/mod.rs"]
pub mod tokenizer;
