//! Model hyperparameters read from GGUF metadata, checked against the tensors that are there.
//!
//! [`ModelConfig::from_gguf`] reads what llama.cpp reads for each supported [`Architecture`]
//! (`llm_load_hparams` in `src/llama-model.cpp`), with the same defaults, and rejects an unknown
//! architecture with the list of the supported ones. File bytes are hostile: every count is
//! checked against a cap ([`MAX_LAYERS`] and friends) and against the tensors actually in the
//! file (`block_count` against the `blk.N` tensors, the vocabulary against `token_embd.weight`
//! and the tokenizer, the heads against `attn_q`/`attn_k`, the FFN width against `ffn_up`)
//! before anything is sized from it; each disagreement is a [`ModelError`] naming the key, the
//! value and what it disagrees with. [`ModelConfig::validate_tensors`] then checks that every
//! tensor the forward pass will ask for exists with the shape llama.cpp's `create_tensor`
//! expects and a type a backend can compute with, so a bad file fails before any weight is
//! downloaded: both need only the header. [`ModelConfig::kv_cache_bytes`] sizes the KV cache
//! for a context length.
//!
//! `tools/reference_forward.py` is the executable reference for the hyperparameters and their
//! use; this module follows it field for field.
//!
//! Plain `std` Rust: it builds for wasm32 and natively.

pub mod config;
mod error;

pub use config::*;
pub use error::*;

#[cfg(test)]
mod tests;
