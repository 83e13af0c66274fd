//! The parts of `hearth` that read untrusted file bytes, compiled from the main crate's sources
//! (`#[path]`) so the fuzzer builds in seconds without burn. Both modules are plain `std` Rust and
//! the tokenizer refers to the reader as `crate::gguf`, as in the main crate.

#[path = "../../src/gguf/mod.rs"]
pub mod gguf;
#[path = "../../src/tokenizer/mod.rs"]
pub mod tokenizer;
