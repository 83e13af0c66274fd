//! A model loaded on a backend, with its tokenizer and chat template, generating one request at
//! a time: what the web layer's `LanguageModel` is, in plain Rust.
//!
//! [`LoadPlan`] decides from a parsed header what a load needs (configuration, tokenizer, chat
//! template, key, context); the caller uploads the weights onto its device ([`Engine`]) and
//! [`LoadedModel::new`] assembles the model and its [`ModelInfo`]. [`LoadedModel::generate`]
//! turns a prompt string or chat messages into ids, [`GenerateOptions`] into
//! [`GenerateParams`], runs [`generate`], tells every token and the final statistics to the
//! status stream (`token` and `done` events) and returns a [`GenerationOut`] with the timings.
//! A model generates one request at a time (a second is [`SessionError::Busy`]); `dispose()`
//! frees it at once, or, during a generation, stops that generation at the next token and frees
//! it then.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use burn_wgpu::wgpu;

use crate::backend::{AdapterInfo, Backend, BackendKind, DeviceFaults, GpuFault, NO_WGPU_DEVICE};
use crate::device::Preference;
use crate::gguf::GgufHeader;
use crate::memory::{DeviceLimits, Requirement, RequirementOptions};
use crate::model::ModelConfig;
use crate::status::{self, DoneStats, ErrorInfo, Phase, Progress, StatusStream};
use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use super::cpu;
use super::gpu::Gpu;
use super::{
    ByteSource, Compute, Cpu, GenerateParams, Generation, InferError, LoadError, LoadEvents, Model, SamplerParams,
    Shape, StopReason, TokenEvent, generate, load_model,
};

mod error;

pub use error::{ModelLoadError, SessionError};

/// The context a load gets when the caller names none (or the model's, when smaller).
pub const DEFAULT_CONTEXT: u32 = 2048;

/// Tokens a generation produces when the options name no `maxTokens`.
pub const DEFAULT_MAX_TOKENS: u32 = 256;

/// The model on its backend (boxed: the two differ in size by kilobytes).
pub enum Engine {
    Cpu(Box<Model<Cpu>>),
    Gpu(Box<Model<Gpu>>),
}

impl Engine {
    /// The backend's name: `webgpu: <adapter>` on a GPU with a known adapter, else the
    /// compute's own description.
    pub fn backend_name(&self, adapter: Option<&AdapterInfo>) -> String {
        match (self, adapter) {
            (Engine::Gpu(_), Some(a)) => format!("webgpu: {}", adapter_label(a)),
            (Engine::Gpu(m), None) => m.compute().describe(),
            (Engine::Cpu(m), _) => m.compute().describe(),
        }
    }

    /// Threads the engine computes on: the CPU engine's ([`Cpu::threads`]), 1 on a GPU.
    pub fn threads(&self) -> usize {
        match self {
            Engine::Cpu(m) => m.compute().threads(),
            Engine::Gpu(_) => 1,
        }
    }

    /// Whether decode steps are recorded and replayed (a GPU's [`Gpu::decode_graphs`]).
    pub fn decode_graphs(&self) -> bool {
        match self {
            Engine::Cpu(_) => false,
            Engine::Gpu(m) => m.compute().decode_graphs(),
        }
    }

    /// Bytes of the weights as uploaded.
    pub fn weight_bytes(&self) -> u64 {
        match self {
            Engine::Cpu(m) => m.weight_bytes(),
            Engine::Gpu(m) => m.weight_bytes(),
        }
    }

    /// Forgets what the KV cache holds (the next generation prefills its whole prompt).
    pub fn reset_cache(&mut self) {
        match self {
            Engine::Cpu(m) => m.reset(),
            Engine::Gpu(m) => m.reset(),
        }
    }

    /// Bytes the compute holds (weights, KV cache, scratch), measured now.
    pub fn resident_bytes(&self) -> u64 {
        match self {
            Engine::Cpu(m) => m.compute().allocated_bytes(),
            Engine::Gpu(m) => m.compute().allocated_bytes(),
        }
    }
}

/// An adapter as people call it: its name, or its description when it has no name.
fn adapter_label(a: &AdapterInfo) -> &str {
    if a.name.is_empty() { &a.description } else { &a.name }
}

/// Whether 'auto' should leave `device` for the CPU backend: a software WebGPU adapter
/// (SwiftShader, llvmpipe) is the CPU running a GPU emulator, and the wasm CPU backend is ~30x
/// faster there (measured on SmolLM2). Says so on `status` ("... so {subject} on the CPU").
pub fn runs_on_cpu_instead(device: &Backend, status: Option<&StatusStream>, subject: &str, key: Option<&str>) -> bool {
    let Some(a) = device.adapter.as_ref().filter(|a| a.is_software()) else { return false };
    if let Some(s) = status {
        s.info(
            format!(
                "The WebGPU adapter ({}) is a software emulation; the CPU backend is faster here, so {subject} on the CPU. Pass backend: 'webgpu' to use WebGPU anyway.",
                adapter_label(a)
            ),
            key,
        );
    }
    true
}

/// Where a ModelManager's models run when it was asked for 'auto', decided once on the device
/// 'auto' acquired: WebGPU, unless there is no adapter or it is a software emulation
/// ([`runs_on_cpu_instead`] says so on `status`).
pub fn models_run_on(device: &Backend, status: &StatusStream) -> Preference {
    if device.adapter.is_none() || runs_on_cpu_instead(device, Some(status), "models run", None) {
        return Preference::Cpu;
    }
    Preference::Webgpu
}

/// A chat message as JS gives it (`{ role, content }`).
#[derive(Debug, Clone, Deserialize)]
pub struct MessageIn {
    pub role: String,
    pub content: String,
}

impl From<Vec<MessageIn>> for Prompt {
    fn from(messages: Vec<MessageIn>) -> Prompt {
        Prompt::Messages(messages.into_iter().map(|m| ChatMessage::new(m.role, m.content)).collect())
    }
}

/// What was loaded (`LanguageModel.info`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    pub key: String,
    pub architecture: String,
    pub backend: String,
    pub adapter: Option<String>,
    pub context_length: u32,
    pub n_vocab: u32,
    pub n_layer: u32,
    pub weight_bytes: f64,
    pub resident_bytes: f64,
    pub file_bytes: f64,
    /// Threads the engine computes on (the CPU engine's; 1 on WebGPU).
    pub threads: u32,
    /// Whether the GPU records the model's decode step once and replays it for later tokens
    /// (false on the CPU).
    pub decode_graphs: bool,
}

/// `LanguageModel.load`'s plain options (`{ contextLength, key }`), for [`LoadPlan::new`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LoadOptions {
    pub context_length: Option<u32>,
    pub key: Option<String>,
    /// The GPU kernel family (`'auto' | 'portable' | 'rows'`, for testing; see
    /// [`crate::infer::gpu::Kernels`]); the CPU engine ignores it.
    pub kernels: Option<crate::infer::gpu::Kernels>,
    /// `'f32' | 'f16'`: how the KV cache stores keys and values ([`crate::infer::KvCache::parse`]),
    /// on either engine.
    pub kv_cache: Option<String>,
    /// Threads the CPU engine computes on (checked by [`crate::input::threads`]); a GPU ignores it.
    pub threads: Option<f64>,
    /// Whether a GPU records the decode step once and replays it (default: on for a GPU, off for
    /// a CPU adapter; for testing, see [`crate::infer::gpu::Gpu::set_decode_graphs`]); the CPU
    /// engine ignores it.
    pub decode_graphs: Option<bool>,
}

/// What a load needs besides the weights, decided from the header before any device work.
pub struct LoadPlan {
    pub cfg: ModelConfig,
    pub tokenizer: Tokenizer,
    /// `None` when the model has no chat template Hearth knows (prompt strings still work).
    pub template: Option<ChatTemplate>,
    /// The name in status events: the caller's, or the architecture's.
    pub key: String,
    /// `context_length` (default [`DEFAULT_CONTEXT`]) within `1..=` the model's.
    pub context: u32,
    pub shape: Shape,
    pub file_bytes: u64,
    /// The GPU kernel family to run ([`Kernels::Auto`] unless a test forces one).
    pub kernels: crate::infer::gpu::Kernels,
    /// Threads the CPU engine computes on (`None`: the default, see [`cpu::threads::engine`]).
    pub threads: Option<u32>,
    /// Recorded decode steps forced on or off (`None`: the GPU's default).
    pub decode_graphs: Option<bool>,
}

impl LoadPlan {
    /// The plan for `header`.
    ///
    /// # Errors
    /// [`SessionError::Infer`] for a model Hearth cannot run, [`SessionError::Tokenizer`] for a
    /// broken vocabulary.
    pub fn new(header: &GgufHeader, key: Option<String>, context_length: Option<u32>) -> Result<Self, SessionError> {
        let cfg = ModelConfig::from_gguf(header).map_err(|e| SessionError::Infer(e.into()))?;
        let tokenizer = Tokenizer::from_gguf(header).map_err(SessionError::Tokenizer)?;
        let template = ChatTemplate::detect(tokenizer.chat_template(), Some(cfg.arch.name())).ok();
        let key = key.unwrap_or_else(|| cfg.arch.name().to_owned());
        let context = context_length.unwrap_or(DEFAULT_CONTEXT).min(cfg.context_length).max(1);
        let shape = Shape::for_context(context as usize);
        Ok(LoadPlan {
            cfg,
            tokenizer,
            template,
            key,
            context,
            shape,
            file_bytes: header.total_file_bytes(),
            kernels: crate::infer::gpu::Kernels::Auto,
            threads: None,
            decode_graphs: None,
        })
    }

    /// Checks every buffer the load will allocate (weights per binding, one layer's KV cache,
    /// the logits and activation buffers) against the device's `limits` before anything is
    /// allocated: a buffer over a limit would be a WebGPU validation error, which the GPU runtime
    /// does not survive.
    ///
    /// # Errors
    /// [`SessionError::OverLimit`] naming the buffer, its size and the limit.
    pub fn check_limits(&self, header: &GgufHeader, limits: &DeviceLimits) -> Result<(), SessionError> {
        match self.requirement(header, limits).problems.into_iter().next() {
            Some(problem) => Err(SessionError::OverLimit { key: self.key.clone(), message: problem.message }),
            None => Ok(()),
        }
    }

    /// What this load will occupy on a device with `limits`: the weights as the GPU backend
    /// lays them out and the buffers `Model::new` allocates for this plan's shape
    /// ([`crate::infer::BufferPlan`]), each as allocated. The same figure as
    /// [`Requirement::for_load`] for this context.
    pub fn requirement(&self, header: &GgufHeader, limits: &DeviceLimits) -> Requirement {
        let options = RequirementOptions { context: self.context, batch: self.shape.batch as u32, kv: self.shape.kv };
        Requirement::for_config(&self.cfg, header, options, limits)
    }

    /// The device to load on: `device` (what `preference` acquired), or the CPU backend when
    /// 'auto' got a software adapter ([`runs_on_cpu_instead`] says so on `status`).
    pub fn device_for(
        &self,
        preference: Preference,
        device: Rc<Backend>,
        status: Option<&StatusStream>,
    ) -> Rc<Backend> {
        let subject = format!("{} runs", self.key);
        if preference == Preference::Auto && runs_on_cpu_instead(&device, status, &subject, Some(&self.key)) {
            return Rc::new(Backend::cpu());
        }
        device
    }

    /// Says "Loading model <key>..." on `status`.
    pub fn announce(&self, status: Option<&StatusStream>) {
        if let Some(s) = status {
            s.info(format!("Loading model {}...", self.key), Some(&self.key));
        }
    }
}

/// What a load tells besides the status stream, and whom it asks whether to stop.
pub struct LoadHooks<'a> {
    /// Every upload `progress` event's figures (`onProgress`).
    pub on_progress: &'a dyn Fn(&Progress),
    /// Asked before every tensor and every piece of a large one.
    pub cancelled: &'a dyn Fn() -> bool,
    /// Whether to say "Loading model <key>..." and "Model <key> loaded successfully." (a
    /// ModelManager says them itself: the first before its download, the second after
    /// registering the model with its memory account, in the ModelManager v3.1 design's order).
    pub announce: bool,
}

/// A load's reports for model `key`: `progress` (phase `upload`) and `metrics` events on the
/// status stream with the core loader's cadence, each progress also to `on_progress`;
/// `cancelled` is asked before every tensor and piece.
pub struct StatusLoadEvents<'a> {
    pub key: &'a str,
    pub status: Option<&'a StatusStream>,
    pub on_progress: &'a dyn Fn(&Progress),
    pub cancelled: &'a dyn Fn() -> bool,
}

impl LoadEvents for StatusLoadEvents<'_> {
    fn upload_progress(&self, loaded: u64, total: u64) {
        let p = Progress::new(Phase::Upload, loaded, Some(total));
        (self.on_progress)(&p);
        if let Some(s) = self.status {
            s.progress(p, Some(self.key));
        }
    }

    fn resident(&self, bytes: u64) {
        if let Some(s) = self.status {
            s.metrics(status::Metrics { used_bytes: bytes, ..Default::default() }, Some(self.key));
        }
    }

    fn cancelled(&self) -> bool {
        (self.cancelled)()
    }
}

/// `generate`'s options (sampling read separately into `sampler`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GenerateOptions {
    pub max_tokens: Option<u32>,
    pub stop: Vec<String>,
    /// A prompt string becomes one user message rendered with the chat template.
    pub chat: Option<bool>,
    pub ignore_eos: bool,
    /// Reuse the KV cache's prefix shared with the prompt (default true; llama.cpp's
    /// `cache_prompt`).
    pub cache_prompt: Option<bool>,
    #[serde(skip)]
    pub sampler: SamplerParams,
}

impl GenerateOptions {
    /// The generation parameters; `seed` is the sampler's when the options give none.
    pub fn params(&self, seed: u64) -> GenerateParams {
        let mut sampler = self.sampler.clone();
        sampler.seed = sampler.seed.or(Some(seed));
        GenerateParams {
            max_tokens: self.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS) as usize,
            sampler,
            stop: self.stop.clone(),
            ignore_eog: self.ignore_eos,
            reuse_cache: self.cache_prompt.unwrap_or(true),
        }
    }
}

/// What to continue: a prompt string, or chat messages rendered with the model's template.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Messages(Vec<ChatMessage>),
}

/// What a generation resolves with.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationOut {
    pub text: String,
    pub prompt_ids: Vec<u32>,
    pub generated_ids: Vec<u32>,
    pub prompt_tokens: u32,
    /// Prompt tokens served from the KV cache of the previous generation (not evaluated).
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    pub stop_reason: StopReason,
    pub ttft_ms: f64,
    pub prefill_tokens_per_second: f64,
    pub decode_tokens_per_second: f64,
    pub backend: String,
}

/// What a generation asks of its caller.
pub struct Hooks<'a> {
    /// The clock for the timings, in milliseconds.
    pub now_ms: &'a dyn Fn() -> f64,
    /// Whether the caller cancelled (asked between tokens).
    pub cancelled: &'a dyn Fn() -> bool,
    /// Every token as it is produced; `false` stops the generation (which still resolves).
    pub on_token: &'a mut dyn FnMut(&TokenEvent<'_>) -> bool,
    /// The sampler's seed when the options give none.
    pub seed: u64,
}

/// A loaded model; see the module documentation.
pub struct LoadedModel {
    /// Out of its cell while generating; `None` once disposed.
    engine: RefCell<Option<Engine>>,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    info: ModelInfo,
    busy: Cell<bool>,
    /// `dispose()` was called (the engine may be out of its cell, generating, at the time).
    disposed: Cell<bool>,
    status: Option<Rc<StatusStream>>,
    /// The uncaptured errors of the device the model runs on (never any on the CPU).
    faults: DeviceFaults,
    /// Whether the status stream was told the GPU stopped replaying recorded decode steps.
    told_graphs_failed: Cell<bool>,
}

impl LoadedModel {
    /// The model `plan` planned, uploaded as `engine`; tells `status` it is ready (a `progress`
    /// event of phase `ready`).
    pub fn new(
        plan: LoadPlan,
        engine: Engine,
        adapter: Option<&AdapterInfo>,
        status: Option<Rc<StatusStream>>,
    ) -> LoadedModel {
        let weight_bytes = engine.weight_bytes();
        let info = ModelInfo {
            key: plan.key,
            architecture: plan.cfg.arch.name().to_owned(),
            backend: engine.backend_name(adapter),
            adapter: adapter.map(|a| a.name.clone()),
            context_length: plan.context,
            n_vocab: plan.cfg.n_vocab,
            n_layer: plan.cfg.n_layer,
            weight_bytes: weight_bytes as f64,
            resident_bytes: engine.resident_bytes() as f64,
            file_bytes: plan.file_bytes as f64,
            threads: engine.threads() as u32,
            decode_graphs: engine.decode_graphs(),
        };
        if let Some(s) = &status {
            s.progress(Progress::new(Phase::Ready, weight_bytes, Some(weight_bytes)), Some(&info.key));
        }
        LoadedModel {
            engine: RefCell::new(Some(engine)),
            tokenizer: plan.tokenizer,
            template: plan.template,
            info,
            busy: Cell::new(false),
            disposed: Cell::new(false),
            status,
            faults: DeviceFaults::default(),
            told_graphs_failed: Cell::new(false),
        }
    }

    /// Fails generations (and says so on the status stream) when `faults` records an
    /// uncaptured device error while they run: the faults of the device the engine is on.
    pub fn with_faults(mut self, faults: DeviceFaults) -> LoadedModel {
        self.faults = faults;
        self
    }

    /// Loads the model `plan` planned for `header` from `source` onto `device` (its GPU through
    /// our kernels, or the CPU backend) with the core loader, reporting through `events`; the
    /// model tells `status` from then on. On a GPU every buffer is first checked against the
    /// device's limits (one over a limit would be a WebGPU validation error), and running out of
    /// memory during the upload fails the load, freeing what was uploaded, instead of reaching
    /// the runtime's uncaptured-error handler (which panics).
    ///
    /// # Errors
    /// [`ModelLoadError::Load`] from the loader; [`SessionError::OverLimit`],
    /// [`SessionError::OutOfMemory`], [`SessionError::DeviceFault`] (an uncaptured device error
    /// during the upload) and [`SessionError::LoadCancelled`].
    pub async fn load<S: ByteSource + ?Sized>(
        plan: LoadPlan,
        device: &Backend,
        header: &GgufHeader,
        source: &S,
        hooks: LoadHooks<'_>,
        status: Option<Rc<StatusStream>>,
    ) -> Result<LoadedModel, ModelLoadError<S::Error>> {
        if hooks.announce {
            plan.announce(status.as_deref());
        }
        let key = plan.key.clone();
        let events = &StatusLoadEvents {
            key: &key,
            status: status.as_deref(),
            on_progress: hooks.on_progress,
            cancelled: hooks.cancelled,
        };
        async fn upload<C: Compute, S: ByteSource + ?Sized>(
            compute: C,
            plan: &LoadPlan,
            header: &GgufHeader,
            source: &S,
            events: &StatusLoadEvents<'_>,
        ) -> Result<Model<C>, ModelLoadError<S::Error>> {
            load_model(compute, &plan.cfg, header, plan.shape, source, events).await.map_err(|e| match e {
                LoadError::Cancelled => SessionError::LoadCancelled { key: plan.key.clone() }.into(),
                e => ModelLoadError::Load(e),
            })
        }
        let engine = match device.kind {
            BackendKind::Cpu => {
                // In the browser: shard workers on a cross-origin isolated page, else one thread.
                let (cpu, threads) = cpu::threads::engine(plan.threads).await;
                let model = upload(cpu, &plan, header, source, events).await?;
                // The shard workers hold their rows now; they serve from here on.
                if let Err(e) = model.compute().serve(plan.shape.batch).await {
                    let e = InferError::Device(format!("a shard worker of the CPU engine failed: {e}"));
                    return Err(SessionError::Infer(e).into());
                }
                // How many threads, and why not more (in the browser; nothing natively).
                if let (Some(s), Some(note)) = (status.as_deref(), cpu::threads::load_note(&key, &threads)) {
                    s.info(note, Some(&key));
                }
                Engine::Cpu(Box::new(model))
            }
            BackendKind::Webgpu => {
                if let Some(a) = &device.adapter {
                    let limits = DeviceLimits {
                        max_buffer_size: a.max_buffer_size,
                        max_storage_buffer_binding_size: a.max_storage_buffer_binding_size,
                    };
                    plan.check_limits(header, &limits)?;
                }
                let wgpu_device =
                    device.device.clone().ok_or_else(|| super::InferError::Device(NO_WGPU_DEVICE.into()))?;
                let features = device.adapter.as_ref().map(AdapterInfo::gpu_features).unwrap_or_default();
                let gpu = Gpu::with_features(wgpu_device, features, u64::MAX)?;
                gpu.set_kernels(plan.kernels)?;
                if let Some(on) = plan.decode_graphs {
                    gpu.set_decode_graphs(on)?;
                }
                // The upload's faults are the load's to report, until the scope is popped.
                let work = device.faults.begin();
                let scope = device.wgpu.as_ref().map(|d| d.push_error_scope(wgpu::ErrorFilter::OutOfMemory));
                let loaded = upload(gpu, &plan, header, source, events).await;
                let oom = match scope {
                    Some(scope) => scope.pop().await,
                    None => None,
                };
                if let Some(error) = oom {
                    drop(loaded);
                    // The browser's own words (the error's causes), not only wgpu's heading.
                    let detail = GpuFault::from_wgpu(&error).message;
                    return Err(SessionError::OutOfMemory { key: plan.key, detail }.into());
                }
                // A validation or internal error during the upload reached the device's handler
                // (the caller tells a failed load, like the out-of-memory one above).
                if let Some(fault) = device.faults.since(work.mark()) {
                    drop(loaded);
                    return Err(SessionError::DeviceFault { key: plan.key, fault }.into());
                }
                if let Some(message) = device.faults.lost() {
                    drop(loaded);
                    return Err(SessionError::DeviceLost { key: plan.key, message }.into());
                }
                Engine::Gpu(Box::new(loaded?))
            }
        };
        let model = LoadedModel::new(plan, engine, device.adapter.as_ref(), status).with_faults(device.faults.clone());
        if hooks.announce {
            model.announce();
        }
        Ok(model)
    }

    /// Says "Model <key> loaded successfully." on the status stream.
    pub fn announce(&self) {
        if let Some(s) = &self.status {
            s.info(format!("Model {} loaded successfully.", self.info.key), Some(&self.info.key));
        }
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Whether it is generating now.
    pub fn is_busy(&self) -> bool {
        self.busy.get()
    }

    pub fn is_disposed(&self) -> bool {
        self.disposed.get()
    }

    /// Frees the weights, the KV cache and every buffer; a running generation stops at its next
    /// token and frees them then.
    pub fn dispose(&self) {
        self.disposed.set(true);
        self.engine.borrow_mut().take();
    }

    /// The text to tokenize: the prompt string, or the messages (or the string as one user
    /// message, with `chat`) rendered with the chat template.
    pub fn prompt_text(&self, prompt: Prompt, chat: bool) -> Result<String, SessionError> {
        let messages: Vec<ChatMessage> = match prompt {
            Prompt::Text(s) if !chat => return Ok(s),
            Prompt::Text(s) => vec![ChatMessage::new("user", s)],
            Prompt::Messages(m) => m,
        };
        let template = self.template.ok_or(SessionError::NoChatTemplate)?;
        template.render(&messages, true).map_err(SessionError::Tokenizer)
    }

    /// Generates a continuation of `prompt`. Every token goes out as a `token` event and to
    /// `hooks.on_token`; the end as a `done` event (also when cancelled).
    ///
    /// # Errors
    /// See [`SessionError`].
    pub async fn generate(
        &self,
        prompt: Prompt,
        opts: &GenerateOptions,
        hooks: Hooks<'_>,
    ) -> Result<GenerationOut, SessionError> {
        if self.busy.get() {
            return Err(SessionError::Busy);
        }
        if self.disposed.get() {
            return Err(SessionError::Disposed);
        }
        if let Some(message) = self.faults.lost() {
            self.dispose();
            return Err(SessionError::DeviceLost { key: self.info.key.clone(), message });
        }
        let text = self.prompt_text(prompt, opts.chat.unwrap_or(false))?;
        let ids = self.tokenizer.encode(&text, true, true);
        let params = opts.params(hooks.seed);
        let key = self.info.key.as_str();
        let Some(mut engine) = self.engine.borrow_mut().take() else { return Err(SessionError::Disposed) };
        let Hooks { now_ms, cancelled, on_token, .. } = hooks;
        self.busy.set(true);
        // Device errors no scope caught from here on fail this generation (see `DeviceFaults`).
        let work = self.faults.begin();
        let mark = work.mark();
        let fault: Cell<Option<GpuFault>> = Cell::new(None);
        let result = {
            let mut cb = |t: &TokenEvent<'_>| -> bool {
                // Each token was read back from the device: a step that raised an uncaptured
                // error, or a device lost meanwhile, stops the generation here.
                if let Some(f) = self.faults.since(mark) {
                    fault.set(Some(f));
                    return false;
                }
                if self.faults.lost().is_some() {
                    return false;
                }
                if let Some(s) = &self.status
                    && let Some(id) = t.id
                {
                    let token = status::TokenEvent { text: t.text.to_owned(), token_id: id, index: t.index as u32 };
                    s.token(token, Some(key));
                }
                // `dispose()` during the generation stops it between tokens, like a cancellation.
                let go_on = !cancelled() && !self.disposed.get();
                on_token(t) && go_on
            };
            match &mut engine {
                Engine::Cpu(m) => generate(&mut **m, &self.tokenizer, &ids, &params, now_ms, &mut cb).await,
                Engine::Gpu(m) => generate(&mut **m, &self.tokenizer, &ids, &params, now_ms, &mut cb).await,
            }
        };
        // Decoding goes on launched op by op (slower, same tokens) once recording or replaying a
        // decode step failed: said once.
        if let (Engine::Gpu(m), Some(s)) = (&engine, &self.status)
            && let Some(why) = m.compute().decode_graphs_failure()
            && !self.told_graphs_failed.replace(true)
        {
            s.info(format!("Model {key}: decode steps are launched one by one from now on ({why})."), Some(key));
        }
        self.busy.set(false);
        drop(work);
        if let Some(message) = self.faults.lost() {
            // The device went away under the generation: its model went with it. Whoever follows
            // the device (a ModelManager) tells the loss on the status stream, once.
            self.disposed.set(true);
            drop(engine);
            return Err(SessionError::DeviceLost { key: key.to_owned(), message });
        }
        if self.disposed.get() {
            // Disposed while generating: the weights and caches go now, not when the engine returns.
            drop(engine);
            return Err(SessionError::DisposedDuring);
        }
        // The last step's error may come after its readback (or the step failed because of it):
        // what the cache holds is then unknown.
        let fault = fault.take().or_else(|| self.faults.since(mark));
        if fault.is_some() {
            engine.reset_cache();
        }
        *self.engine.borrow_mut() = Some(engine);
        if let Some(fault) = fault {
            let error = SessionError::DeviceFault { key: key.to_owned(), fault };
            report(self.status.as_deref(), &error, key);
            return Err(error);
        }
        let g: Generation = result.map_err(SessionError::Infer)?;
        let out = self.result(&g);
        if let Some(s) = &self.status {
            s.done(done_stats(&out), Some(key));
        }
        if g.stop_reason == StopReason::Cancelled && cancelled() {
            let Generation { text, prompt_ids, generated_ids, cached_tokens, .. } = g;
            return Err(SessionError::Cancelled {
                text,
                prompt_tokens: prompt_ids.len() as u32,
                cached_tokens: cached_tokens as u32,
                generated_tokens: generated_ids.len() as u32,
            });
        }
        Ok(out)
    }

    fn result(&self, g: &Generation) -> GenerationOut {
        GenerationOut {
            text: g.text.clone(),
            prompt_ids: g.prompt_ids.clone(),
            generated_ids: g.generated_ids.clone(),
            prompt_tokens: g.prompt_ids.len() as u32,
            cached_tokens: g.cached_tokens as u32,
            generated_tokens: g.generated_ids.len() as u32,
            stop_reason: g.stop_reason,
            ttft_ms: g.timings.ttft_ms,
            prefill_tokens_per_second: g.timings.prefill_tok_s(),
            decode_tokens_per_second: g.timings.decode_tok_s(),
            backend: self.info.backend.clone(),
        }
    }
}

/// Tells `status` of `error` (an `error` event for model `key`).
fn report(status: Option<&StatusStream>, error: &SessionError, key: &str) {
    use crate::error::Coded;
    if let Some(s) = status {
        s.error(ErrorInfo::of(error.code(), error.message()), Some(key));
    }
}

fn done_stats(out: &GenerationOut) -> DoneStats {
    DoneStats {
        text: out.text.clone(),
        prompt_tokens: out.prompt_tokens,
        cached_tokens: out.cached_tokens,
        generated_tokens: out.generated_tokens,
        ttft_ms: out.ttft_ms,
        prefill_tokens_per_second: out.prefill_tokens_per_second,
        decode_tokens_per_second: out.decode_tokens_per_second,
        stop_reason: out.stop_reason,
    }
}

#[cfg(test)]
mod tests;
