//! Model hyperparameters read from GGUF metadata, checked against the tensors that are there.
//!
//! [`ModelConfig::from_gguf`] reads what llama.cpp reads for each supported [`Architecture`]
//! (`llm_load_hparams` in `src/llama-model.cpp`), with the same defaults, and rejects an unknown
//! architecture with the list of the supported ones. [`ModelConfig::validate_tensors`] then checks
//! that every tensor the forward pass will ask for exists with the shape llama.cpp's
//! `create_tensor` expects, so a bad file fails before any weight is downloaded: both need only
//! the header. [`ModelConfig::kv_cache_bytes`] sizes the KV cache for a context length.
//!
//! `tools/reference_forward.py` is the executable reference for the hyperparameters and their
//! use; this module follows it field for field.
//!
//! Plain `std` Rust: it builds for wasm32 and natively.

pub mod config;

pub use config::*;

#[cfg(test)]
mod tests;
