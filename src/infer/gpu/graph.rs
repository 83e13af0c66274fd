//! Decode steps recorded once and replayed ([`Compute::decode_step`] on the GPU).
//!
//! cubecl can capture a sequence of launches into a graph whose pipelines, bind groups and
//! parameters are resolved once, and replay it by re-encoding that state: a replayed token skips
//! cubecl's launch path (kernel lookup, a bind group and a parameter upload per dispatch). What a
//! graph fixes at capture cannot change per token, so the position, the one parameter of a
//! decode step that does, travels differently in a recorded step: its RoPE + KV-cache-write and
//! attention kernels are the `pos_buf` variants ([`Spec::pos_buf`]), which read it from a
//! one-word buffer written once per token before the replay. Everything else a step depends on
//! is fixed for a model: its buffers, and the token's id, embedded from the buffer `key` names.
//! Attention's split over the context (flash-decoding) changes the dispatches with the
//! context's length, so a graph notes the split each attention kernel took and is replayed only
//! where the same splits hold; otherwise a new one is recorded (on a GPU every 256 keys past
//! 1024; never on a CPU adapter, which does not split).
//!
//! A graph binds buffers by their device addresses, unchecked: it holds a handle to every
//! buffer its launches bind, so none is freed while it can be replayed, and the model that owns
//! it ([`Compute::Steps`]) drops it with its buffers. It replays on the stream it was recorded
//! on: natively only from the thread that recorded it (cubecl's streams are per thread).
//!
//! Off where the device lacks a storage-buffer binding for `POS` (the RoPE kernel with biases
//! or norms binds 8 buffers, and 8 is WebGPU's default limit), while kernels are profiled, and
//! after a recording or replay fails (the step then runs as usual). Off by default on a CPU
//! adapter: there a token's time is the kernels' execution, and SwiftShader ran decode about 5%
//! slower with attention's loop bounds read from `POS` (its loops then run lane by lane), more
//! than the launch path it saves (lavapipe gained about 8%); on a GPU the launch path is most
//! of a small model's token.

use std::sync::atomic::Ordering;

use burn::cubecl::client::Graph;
use burn::cubecl::server::Handle;

use super::Gpu;
use super::attention::decode_keys;
use super::kernel::MAX_BUFFERS;
use crate::infer::{Compute, InferError};

/// Graphs a model keeps: the latest few splits (a long context passes through one per 256 keys).
const MAX_GRAPHS: usize = 4;

/// A model's recorded decode steps (its [`Compute::Steps`] on the GPU).
#[derive(Default)]
pub struct GpuSteps {
    graphs: Vec<Recorded>,
}

struct Recorded {
    key: u32,
    /// Each attention kernel's window and split, in launch order.
    splits: Vec<(u32, Option<(u32, u32)>)>,
    dispatches: u64,
    graph: Graph,
    /// Every buffer the graph binds (see the module docs).
    _buffers: Vec<Handle>,
    #[cfg(not(target_arch = "wasm32"))]
    thread: std::thread::ThreadId,
}

/// What a recording collects as the step's launches go by.
#[derive(Default)]
pub(super) struct Recording {
    splits: Vec<(u32, Option<(u32, u32)>)>,
    buffers: Vec<Handle>,
    dispatches: u64,
}

/// The state of [`Gpu`]'s recordings.
#[derive(Default)]
pub(super) struct GraphSlot {
    /// Launches go to a recording (not to the device) while this is `Some`.
    pub(super) recording: std::sync::Mutex<Option<Recording>>,
    /// Why recording or replaying failed ([`Gpu::decode_graphs_failure`]).
    failure: std::sync::Mutex<Option<String>>,
}

impl Gpu {
    /// Whether decode steps are recorded and replayed: by default on a GPU whose device binds
    /// the position buffer, not on a CPU adapter (see the module docs); forced either way for
    /// tests and benches.
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] turning them on where the device cannot bind the position
    /// buffer (fewer than [`MAX_BUFFERS`] storage buffers per shader stage); nothing changes.
    pub fn set_decode_graphs(&self, on: bool) -> Result<(), InferError> {
        if on && !self.graphs_possible {
            let adapter = self.adapter_name();
            return Err(InferError::invalid(
                "decodeGraphs",
                format!(
                    "recorded decode steps need {MAX_BUFFERS} storage buffers per shader stage, more than {adapter} binds"
                ),
            ));
        }
        self.graphs_on.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Whether decode steps are recorded and replayed ([`Gpu::set_decode_graphs`]).
    pub fn decode_graphs(&self) -> bool {
        self.graphs_on.load(Ordering::Relaxed)
    }

    /// Decode steps replayed and recorded so far, in that order.
    pub fn decode_graph_counts(&self) -> (u64, u64) {
        (self.replays.load(Ordering::Relaxed), self.recordings.load(Ordering::Relaxed))
    }

    /// Why decode steps stopped being recorded and replayed, if one failed.
    pub fn decode_graphs_failure(&self) -> Option<String> {
        self.graph.failure.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Turns decode graphs off for good after `why` (the steps run as usual from then on).
    fn graphs_failed(&self, why: String) {
        self.graphs_on.store(false, Ordering::Relaxed);
        *self.graph.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Whether the step kernels read the position from `POS` (while a step is recorded).
    pub(super) fn pos_from_buffer(&self) -> bool {
        self.pos_buf.load(Ordering::Relaxed)
    }

    /// Notes what a launch binds when a recording is under way; true if it is (the launch is
    /// then recorded, not run, and not counted as a dispatch).
    pub(super) fn record_launch<'a>(&self, buffers: impl Iterator<Item = &'a Handle>) -> bool {
        if !self.recording_now.load(Ordering::Relaxed) {
            return false;
        }
        let mut slot = self.graph.recording.lock().unwrap_or_else(|e| e.into_inner());
        let Some(rec) = slot.as_mut() else { return false };
        rec.buffers.extend(buffers.cloned());
        rec.dispatches += 1;
        true
    }

    /// Notes an attention kernel's window and split while a recording is under way.
    pub(super) fn record_split(&self, window: u32, split: Option<(u32, u32)>) {
        if self.recording_now.load(Ordering::Relaxed) {
            let mut slot = self.graph.recording.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(rec) = slot.as_mut() {
                rec.splits.push((window, split));
            }
        }
    }

    /// [`Compute::decode_step`].
    pub(super) fn replay_or_record(&self, steps: &mut GpuSteps, key: u32, pos: usize, step: &mut dyn FnMut()) {
        if !self.decode_graphs() || self.profiling() || self.write_ids(&self.pos, &[pos as u32]).is_err() {
            return step();
        }
        #[cfg(not(target_arch = "wasm32"))]
        steps.graphs.retain(|g| g.thread == std::thread::current().id());
        let flash = self.flash_decoding();
        let fits = |g: &Recorded| {
            g.key == key && g.splits.iter().all(|&(w, split)| flash.split(decode_keys(pos as u32, w)) == split)
        };
        if let Some(g) = steps.graphs.iter().find(|g| fits(g)) {
            // SAFETY: the graph holds a handle to every buffer it binds (`_buffers`), and it is
            // replayed on the stream it was recorded on (this thread's; wasm has one), before
            // whatever the caller enqueues next on it.
            match unsafe { g.graph.replay() } {
                Ok(()) => {
                    self.launches.fetch_add(g.dispatches, Ordering::Relaxed);
                    self.replays.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(e) => {
                    self.graphs_failed(format!("replaying a recorded decode step failed: {e:?}"));
                    steps.graphs.clear();
                    return step();
                }
            }
        }
        // This token's step, run with its position read from `POS`, then the same launches
        // recorded (not run) for the tokens after it.
        self.pos_buf.store(true, Ordering::Relaxed);
        let prepared = self.client.graph_prepare();
        step();
        let recorded = prepared.and_then(|()| match self.client.start_capture() {
            Ok(()) => {
                *self.graph.recording.lock().unwrap_or_else(|e| e.into_inner()) = Some(Recording::default());
                self.recording_now.store(true, Ordering::Relaxed);
                step();
                self.recording_now.store(false, Ordering::Relaxed);
                let rec = self.graph.recording.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
                self.client.stop_capture().map(|graph| (graph, rec))
            }
            Err(e) => {
                // Ends the prepared capture.
                let _ = self.client.stop_capture();
                Err(e)
            }
        });
        self.pos_buf.store(false, Ordering::Relaxed);
        match recorded {
            Ok((graph, rec)) => {
                self.recordings.fetch_add(1, Ordering::Relaxed);
                if steps.graphs.len() == MAX_GRAPHS {
                    steps.graphs.remove(0);
                }
                steps.graphs.push(Recorded {
                    key,
                    splits: rec.splits,
                    dispatches: rec.dispatches,
                    graph,
                    _buffers: rec.buffers,
                    #[cfg(not(target_arch = "wasm32"))]
                    thread: std::thread::current().id(),
                });
            }
            Err(e) => {
                self.graphs_failed(format!("recording a decode step failed: {e:?}"));
            }
        }
    }
}
