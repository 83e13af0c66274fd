//! The browser glue of [`super`]: the shard Workers (started by `workers.js`, which runs
//! `hearth-worker.js` in each), the `SharedArrayBuffer` and the `Atomics` both sides synchronise
//! with.
//!
//! The header's words ([`Layout::JOB`] ... and the layout words below) are the only state the
//! two sides share besides the data regions. A job is published by writing its data and
//! description, zeroing [`Layout::DONE`], then `Atomics.add` on [`Layout::JOB`] and
//! `Atomics.notify`; the shards' `Atomics.load` of the job word orders their reads after those
//! writes, and the caller's load of the done word orders its reads of their outputs after theirs.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;

use js_sys::{Atomics, Float32Array, Int8Array, Int32Array, SharedArrayBuffer};
use wasm_bindgen::prelude::*;

use super::{Layout, Peers, Shard, part_rows};
use crate::gguf::GgmlType;
use crate::infer::cpu::quant::QuantActs;

/// Header words the caller writes at `serve` for the shards: the layout and the part count.
const LAYOUT_TOKENS: u32 = 5;
const LAYOUT_COLS: u32 = 6;
const LAYOUT_OUT_ROWS: u32 = 7;
const PARTS: u32 = 8;
/// Header word: the job's matrix rows (all parts').
const ROWS: u32 = 9;
const HEADER_WORDS: u32 = 16;

/// How long a start, or the hand-over of the weights, may take before the load gives up.
const START_TIMEOUT_MS: f64 = 30_000.0;
const SERVE_TIMEOUT_MS: f64 = 120_000.0;
/// How long the caller waits for one product's shards before it stops waiting for good.
const JOB_TIMEOUT_MS: f64 = 60_000.0;
/// `Atomics.load`s a waiting side spins before it blocks (a shard) or looks at the clock.
const SPINS: u32 = 20_000;

#[wasm_bindgen(module = "/src/infer/cpu/team/workers.js")]
extern "C" {
    #[wasm_bindgen(js_name = startShards, catch)]
    async fn start_shards(module: JsValue, parts: u32, timeout_ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = postWeight)]
    fn post_weight(workers: &JsValue, part: u32, id: u32, ty: u32, rows: u32, cols: u32, bytes: &[u8]);
    #[wasm_bindgen(js_name = serveShards, catch)]
    async fn serve_shards(workers: &JsValue, shared: &SharedArrayBuffer, timeout_ms: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = stopShards)]
    fn stop_shards(workers: &JsValue);
    #[wasm_bindgen(js_name = canBlock)]
    fn can_block() -> bool;
}

/// The message of a JS error value.
fn describe(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(e) => String::from(e.message()),
        None => e.as_string().unwrap_or_else(|| format!("{e:?}")),
    }
}

fn load(header: &Int32Array, word: u32) -> i32 {
    Atomics::load(header, word).unwrap_or(0)
}

fn store(header: &Int32Array, word: u32, value: usize) {
    let _ = Atomics::store(header, word, value as i32);
}

/// The shared buffer once the shards serve.
struct Shared {
    buffer: SharedArrayBuffer,
    header: Int32Array,
    layout: Layout,
}

/// The shard workers of one [`super::super::Cpu`], seen from the model's side. Dropping it
/// (the model disposed or unloaded) terminates them.
pub struct WebPeers {
    parts: usize,
    workers: JsValue,
    shared: RefCell<Option<Shared>>,
    /// (rows, tokens) of the running job.
    job: Cell<(usize, usize)>,
    /// Whether this thread may `Atomics.wait` (in a Worker) or must spin (a window).
    block: bool,
    /// Set when shards stopped answering: products then give zeros instead of waiting again,
    /// and the engine's reads fail ([`Peers::broken`]).
    broken: Cell<bool>,
}

impl WebPeers {
    /// Starts `parts - 1` shard workers on this instance's compiled module.
    ///
    /// # Errors
    /// Why a worker could not start (the script, the module, a timeout).
    pub async fn start(parts: usize) -> Result<WebPeers, String> {
        let workers =
            start_shards(wasm_bindgen::module(), parts as u32, START_TIMEOUT_MS).await.map_err(|e| describe(&e))?;
        Ok(WebPeers {
            parts,
            workers,
            shared: RefCell::new(None),
            job: Cell::new((0, 0)),
            block: can_block(),
            broken: Cell::new(false),
        })
    }
}

impl Drop for WebPeers {
    fn drop(&mut self) {
        stop_shards(&self.workers);
    }
}

impl Peers for WebPeers {
    fn parts(&self) -> usize {
        self.parts
    }

    fn add_weight(&self, part: usize, id: u32, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) {
        post_weight(&self.workers, part as u32, id, ty.id(), rows as u32, cols as u32, bytes);
    }

    fn serve(&self, layout: Layout) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
        Box::pin(async move {
            let buffer = SharedArrayBuffer::new(layout.bytes() as u32);
            let header = Int32Array::new_with_byte_offset_and_length(&buffer, 0, HEADER_WORDS);
            store(&header, LAYOUT_TOKENS, layout.tokens);
            store(&header, LAYOUT_COLS, layout.cols);
            store(&header, LAYOUT_OUT_ROWS, layout.out_rows);
            store(&header, PARTS, self.parts);
            serve_shards(&self.workers, &buffer, SERVE_TIMEOUT_MS).await.map_err(|e| describe(&e))?;
            *self.shared.borrow_mut() = Some(Shared { buffer, header, layout });
            Ok(())
        })
    }

    fn start(&self, id: u32, rows: usize, n: usize, acts: &QuantActs) {
        self.job.set((rows, n));
        let shared = self.shared.borrow();
        let Some(Shared { buffer, header, layout }) = shared.as_ref() else { return };
        let (qs, d, sum) = acts.parts();
        Int8Array::new_with_byte_offset_and_length(buffer, layout.qs() as u32, qs.len() as u32).copy_from(qs);
        Float32Array::new_with_byte_offset_and_length(buffer, layout.d() as u32, d.len() as u32).copy_from(d);
        Float32Array::new_with_byte_offset_and_length(buffer, layout.sum() as u32, sum.len() as u32).copy_from(sum);
        store(header, Layout::MATRIX, id as usize);
        store(header, Layout::TOKENS, n);
        store(header, Layout::COLS, qs.len() / n.max(1));
        store(header, ROWS, rows);
        store(header, Layout::DONE, 0);
        let _ = Atomics::add(header, Layout::JOB, 1);
        let _ = Atomics::notify(header, Layout::JOB);
    }

    fn finish(&self, out: &mut [f32]) {
        let shared = self.shared.borrow();
        let Some(Shared { buffer, header, layout }) = shared.as_ref() else {
            out.fill(0.0);
            return;
        };
        let others = (self.parts - 1) as i32;
        let mut spins = 0u32;
        let mut since: Option<f64> = None;
        loop {
            let done = load(header, Layout::DONE);
            if done >= others {
                break;
            }
            if self.broken.get() {
                out.fill(0.0);
                return;
            }
            spins += 1;
            if spins >= SPINS {
                spins = 0;
                let now = js_sys::Date::now();
                let t0 = *since.get_or_insert(now);
                if now - t0 > JOB_TIMEOUT_MS {
                    self.broken.set(true);
                    out.fill(0.0);
                    return;
                }
                if self.block {
                    let _ = Atomics::wait_with_timeout(header, Layout::DONE, done, 1.0);
                }
            }
        }
        Float32Array::new_with_byte_offset_and_length(buffer, layout.out() as u32, out.len() as u32).copy_to(out);
    }

    fn broken(&self) -> bool {
        self.broken.get()
    }
}

/// A shard worker's loop: waits for each job on `shared`, computes part `part`'s rows with
/// `shard` and reports them done. Returns only if the buffer is not a team's (its header
/// names no parts), which the caller treats as a failure.
pub fn serve(shard: &mut Shard, part: usize, shared: &SharedArrayBuffer) {
    let header = Int32Array::new_with_byte_offset_and_length(shared, 0, HEADER_WORDS);
    let word = |w| load(&header, w).max(0) as usize;
    let layout = Layout { tokens: word(LAYOUT_TOKENS), cols: word(LAYOUT_COLS), out_rows: word(LAYOUT_OUT_ROWS) };
    let parts = word(PARTS);
    if parts < 2 || part == 0 || part >= parts {
        return;
    }
    let mut out: Vec<f32> = Vec::new();
    // The job word starts at 0; the caller publishes job 1 at the earliest.
    let mut seen = 0;
    loop {
        let mut spins = 0u32;
        let job = loop {
            let j = load(&header, Layout::JOB);
            if j != seen {
                break j;
            }
            spins += 1;
            if spins >= SPINS {
                let _ = Atomics::wait(&header, Layout::JOB, seen);
            }
        };
        seen = job;
        let (id, n, cols, rows) = (word(Layout::MATRIX) as u32, word(Layout::TOKENS), word(Layout::COLS), word(ROWS));
        if n <= layout.tokens && cols <= layout.cols {
            let (qs, d, sum) = shard.acts_mut(n, cols);
            Int8Array::new_with_byte_offset_and_length(shared, layout.qs() as u32, qs.len() as u32).copy_to(qs);
            Float32Array::new_with_byte_offset_and_length(shared, layout.d() as u32, d.len() as u32).copy_to(d);
            Float32Array::new_with_byte_offset_and_length(shared, layout.sum() as u32, sum.len() as u32).copy_to(sum);
            let mine = part_rows(rows, parts, part).len();
            if shard.rows(id) == mine && mine > 0 {
                out.resize(mine * n, 0.0);
                shard.run(id, n, &mut out);
                let at = layout.out_of(rows, parts, part, n);
                Float32Array::new_with_byte_offset_and_length(shared, at as u32, out.len() as u32).copy_from(&out);
            }
        }
        let _ = Atomics::add(&header, Layout::DONE, 1);
        let _ = Atomics::notify(&header, Layout::DONE);
    }
}
