//! # Hearth
//!
//! Quantized GGUF language models in the browser, on WebGPU through burn, managed
//! the way a web app needs: what fits on this GPU and why not, loading and
//! switching models, a generation queue, and a status stream that tells the UI
//! every step.
//!
//! ## Layout
//! - [`status`] — the status stream: typed, numbered events, a bounded replay
//!   buffer, SSE framing. Plain Rust; the browser sink lives in `web`.
//! - [`gguf`] — the GGUF reader (header first, then tensors by byte range) and
//!   the block decoders that are the reference for the GPU kernels.
//! - [`model`] — what a GGUF describes: the architecture's hyperparameters from
//!   metadata alone (llama, qwen2, gemma3) and a check of every tensor's shape.
//! - [`infer`] — the forward pass for those architectures, written once against a
//!   `Compute` trait with a CPU backend and a WebGPU/wgpu backend (our WGSL kernels on
//!   burn's runtime); sampling, stopping and streamed generation.
//! - [`cache`] — the model cache's policy (reuse, download, SHA-256 check, what is deleted)
//!   over a storage trait; the browser's Origin Private File System implements it in `web`.
//! - [`memory`] — what this adapter can hold and what a model needs, before download.
//! - [`input`] — the checks on values callers pass in (byte counts, counts, keys), with
//!   an error that names the argument.
//! - [`manager`] — the model catalog (suggestions of models that fit) and the priority
//!   queue of generation tasks; the web layer's `ModelManager` and `TaskExecutor` drive them.
//! - [`tokenizer`] — SentencePiece and byte-level BPE tokenizers built from GGUF
//!   metadata alone, matching llama.cpp; streaming detokenisation; chat templates.
//! - [`backend`] — the devices: burn-wgpu's runtime on WebGPU in the browser (and on
//!   wgpu natively), or none for the CPU engine, the fallback; a matmul self-check
//!   against an f64 reference; the one rule for software (CPU-emulated) adapters.
//! - [`device`] — the one device a page holds: a shared initialisation, generations
//!   after a loss, loss listeners, the adapter's identity as the browser tells it.
//! - [`error`] — the error vocabulary apps see: each failure's JS class and stable code.
//! - [`rng`] — the one deterministic random generator (sampling, tests, benchmarks).
//! - `web` (wasm32 only) — the one thin `#[wasm_bindgen]` layer: JS classes,
//!   typed `.d.ts`, and the conversion of every error into a JS `Error` subclass.
//!
//! The core compiles and is tested natively (`cargo test`); the web layer is
//! tested in headless Chromium on a real WebGPU adapter (`wasm-pack test`). See
//! `docs/ARCHITECTURE.md` for the path from file bytes to tokens and events.
//!
//! ## Not goals
//! - Training or fine-tuning; only inference.
//! - Model formats other than GGUF; architectures other than those listed by the
//!   loader.
//! - Multi-GPU or multi-tab coordination: one page owns one WebGPU device.
//! - Exact GPU memory readings: no browser API reports them; Hearth estimates a
//!   budget and measures what its own allocator holds.

pub mod backend;
pub mod cache;
pub mod device;
pub mod error;
pub mod gguf;
pub mod infer;
pub mod input;
pub mod manager;
pub mod memory;
pub mod model;
pub mod rng;
pub mod source;
pub mod status;
pub mod tokenizer;

#[cfg(target_arch = "wasm32")]
pub mod web;
