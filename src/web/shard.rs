//! `ShardWorker`: the wasm side of a CPU-engine shard worker (`hearth-worker.js` runs one per
//! Worker). Apps never create it: the CPU engine starts its shard workers itself on a cross-origin
//! isolated page (see `infer::cpu::team`).

use std::cell::RefCell;

use js_sys::SharedArrayBuffer;
use wasm_bindgen::prelude::*;

use crate::error::ErrorCode;
use crate::gguf::GgmlType;
use crate::infer::cpu::team::{Shard, web};

use super::error::JsError;

/// One shard of a CPU model's large matrices (internal to the CPU engine's threads).
#[wasm_bindgen]
pub struct ShardWorker {
    part: usize,
    shard: RefCell<Shard>,
}

#[wasm_bindgen]
impl ShardWorker {
    /// The shard for part `part` (1 or more) of its model's products.
    #[wasm_bindgen(constructor)]
    pub fn new(part: u32) -> ShardWorker {
        ShardWorker { part: part as usize, shard: RefCell::new(Shard::new()) }
    }

    /// Takes this part's `rows x cols` rows of sharded matrix `id` (`ty`: the ggml type id).
    #[wasm_bindgen(js_name = addWeight)]
    pub fn add_weight(&self, id: u32, ty: u32, rows: u32, cols: u32, bytes: &[u8]) -> Result<(), JsError> {
        let ty = GgmlType::from_id(ty)
            .ok_or_else(|| JsError::of(ErrorCode::Device, format!("a shard worker got an unknown ggml type {ty}.")))?;
        Ok(self.shard.borrow_mut().add(id, ty, rows as usize, cols as usize, bytes)?)
    }

    /// Serves products through `shared` until the Worker is terminated.
    ///
    /// # Errors
    /// When `shared` is not a shard team's buffer (the loop never started).
    pub fn serve(&self, shared: &SharedArrayBuffer) -> Result<(), JsError> {
        web::serve(&mut self.shard.borrow_mut(), self.part, shared);
        Err(JsError::of(ErrorCode::Device, "a shard worker got a buffer that is not its team's."))
    }
}
