//! `LanguageModel`: a GGUF model loaded onto the page's device, generating text.
//!
//! Loading is the core loader ([`crate::infer::load`]) reading the [`GgufFile`]'s source (URL
//! ranges, a Blob or bytes in memory), narrating progress on the status stream; generation
//! streams tokens to a callback and as `token` events, then a `done` event with the timings.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use crate::backend::{Backend, BackendKind};
use crate::infer::gpu::Gpu;
use crate::infer::{
    Compute, Cpu, GenerateParams, Generation, LoadError, LoadEvents, Model, SamplerParams, Shape, StopReason,
    TokenEvent, generate, load_model,
};
use crate::model::ModelConfig;
use crate::status::{self, DoneStats, Phase, Progress, StatusStream};
use crate::tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use super::device::{Preference, acquire};
use super::error::JsError;
use super::gguf::GgufFile;
use super::streamer::{SseStreamer, field};
use super::types::{BackendArg, GenerateOptionsArg, LoadOptionsArg};
use crate::error::ErrorCode;

/// The model on its backend (boxed: the two differ in size by kilobytes).
enum Engine {
    Cpu(Box<Model<Cpu>>),
    Gpu(Box<Model<Gpu>>),
}

#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    key: String,
    architecture: String,
    backend: String,
    adapter: Option<String>,
    context_length: u32,
    n_vocab: u32,
    n_layer: u32,
    weight_bytes: f64,
    resident_bytes: f64,
    file_bytes: f64,
}

struct Inner {
    engine: RefCell<Option<Engine>>,
    tokenizer: Tokenizer,
    template: Option<ChatTemplate>,
    info: RefCell<ModelInfo>,
    busy: Cell<bool>,
    /// `dispose()` was called (the engine may be out of its cell, generating, at the time).
    disposed: Cell<bool>,
    status: Option<Rc<StatusStream>>,
}

/// A model on the page's device. Create with `LanguageModel.load(file, options)`.
#[wasm_bindgen]
pub struct LanguageModel {
    inner: Rc<Inner>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct LoadOptions {
    context_length: Option<u32>,
    key: Option<String>,
}

/// `generate`'s options, read from JS with [`GenerateOptions::read`] (the `TaskExecutor` reads a
/// task's `params` with it).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(super) struct GenerateOptions {
    max_tokens: Option<u32>,
    stop: Vec<String>,
    chat: Option<bool>,
    ignore_eos: bool,
    /// The sampling settings, read from the same object (see [`sampler_params`]).
    #[serde(skip)]
    sampler: SamplerParams,
}

impl GenerateOptions {
    /// Reads the options object (`undefined` gives the defaults: greedy, 256 tokens).
    pub(super) fn read(options: &JsValue) -> Result<GenerateOptions, JsError> {
        let mut opts: GenerateOptions = super::streamer::read_options(Some(options.clone()), "generate options")?;
        opts.sampler = sampler_params(options)?;
        Ok(opts)
    }
}

/// What a generation resolves with.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GenerationOut {
    text: String,
    prompt_ids: Vec<u32>,
    generated_ids: Vec<u32>,
    prompt_tokens: u32,
    generated_tokens: u32,
    stop_reason: StopReason,
    ttft_ms: f64,
    prefill_tokens_per_second: f64,
    decode_tokens_per_second: f64,
    backend: String,
}

/// `performance.now()` (monotonic, sub-millisecond), in a window or a worker.
fn now_ms() -> f64 {
    let global = js_sys::global();
    Reflect::get(&global, &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

pub(super) fn cancelled(signal: Option<&AbortSignal>) -> bool {
    signal.is_some_and(AbortSignal::aborted)
}

/// A load's reports in JS terms: `progress` (phase `upload`) and `metrics` events on the status
/// stream and `onProgress({ phase, loaded, total, percent })`, with the core loader's cadence;
/// the `AbortSignal` is its cancellation.
struct JsLoadEvents<'a> {
    key: &'a str,
    status: Option<&'a Rc<StatusStream>>,
    on_progress: Option<&'a Function>,
    signal: Option<&'a AbortSignal>,
}

impl LoadEvents for JsLoadEvents<'_> {
    fn upload_progress(&self, loaded: u64, total: u64) {
        let p = Progress::new(Phase::Upload, loaded, Some(total));
        if let Some(f) = self.on_progress {
            let o = js_sys::Object::new();
            let _ = Reflect::set(&o, &"phase".into(), &"upload".into());
            let _ = Reflect::set(&o, &"loaded".into(), &(loaded as f64).into());
            let _ = Reflect::set(&o, &"total".into(), &(total as f64).into());
            let _ = Reflect::set(&o, &"percent".into(), &p.percent.unwrap_or(0.0).into());
            let _ = f.call1(&JsValue::NULL, &o);
        }
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
        cancelled(self.signal)
    }
}

/// The core loader on `compute`, reading `file` (see [`crate::infer::load`]).
async fn load_on<C: Compute>(
    compute: C,
    file: &GgufFile,
    cfg: &ModelConfig,
    shape: Shape,
    events: &JsLoadEvents<'_>,
) -> Result<Model<C>, JsError> {
    let loaded = load_model(compute, cfg, file.header(), shape, &file.reading(events.signal), events).await;
    loaded.map_err(|e| match e {
        LoadError::Cancelled => JsError::of(ErrorCode::Aborted, format!("Loading {} was cancelled.", events.key)),
        e => e.into(),
    })
}

#[wasm_bindgen]
impl LanguageModel {
    /// Loads `file`'s weights onto the device, narrating every step on `streamer`.
    /// Options: `backend` ('auto' | 'webgpu' | 'cpu'), `contextLength` (default min(2048, the model's)), `key` (the name in status
    /// events), `signal`, `onProgress({ phase, loaded, total, percent })`.
    /// Rejects with `ModelFormatError` (unsupported architecture, missing or misshapen tensors,
    /// a tensor type without a kernel), `DownloadError`, `CancelledError`, `GpuUnavailableError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<LanguageModel>")]
    pub fn load(file: &GgufFile, streamer: &SseStreamer, options: Option<LoadOptionsArg>) -> Promise {
        let file = file.share();
        let status: Option<Rc<StatusStream>> = Some(streamer.stream());
        wasm_bindgen_futures::future_to_promise(async move {
            let opts_js: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
            let opts: LoadOptions = super::streamer::read_options(Some(opts_js.clone()), "load options")?;
            let request = LoadRequest {
                preference: Preference::parse(field(&opts_js, "backend").map(|v| v.unchecked_into::<BackendArg>()))?,
                context_length: opts.context_length,
                key: opts.key,
                signal: field(&opts_js, "signal").map(|v| v.unchecked_into()),
                on_progress: field(&opts_js, "onProgress").and_then(|v| v.dyn_into().ok()),
                announce: true,
            };
            Ok(LanguageModel::load_with(&file, status, request).await?.into())
        })
    }
}

/// What [`LanguageModel::load_with`] needs besides the file: `LanguageModel.load`'s options,
/// already read, or the `ModelManager`'s.
pub(super) struct LoadRequest {
    pub preference: Preference,
    pub context_length: Option<u32>,
    pub key: Option<String>,
    pub signal: Option<AbortSignal>,
    pub on_progress: Option<Function>,
    /// Whether to say "Loading model <key>..." and "Model <key> loaded successfully." (the
    /// `ModelManager` says them itself: the first before its download, the second after
    /// registering the model with the memory manager, as the seed does).
    pub announce: bool,
}

impl LanguageModel {
    /// Another handle on the same model (JS gets its own object; disposing either disposes it).
    pub(super) fn handle(&self) -> LanguageModel {
        LanguageModel { inner: self.inner.clone() }
    }

    /// Device (or, on the CPU backend, host) bytes the model holds, measured at load.
    pub(super) fn resident_bytes(&self) -> u64 {
        self.inner.info.borrow().resident_bytes as u64
    }

    /// Whether it is generating now.
    pub(super) fn is_busy(&self) -> bool {
        self.inner.busy.get()
    }

    pub(super) fn is_disposed(&self) -> bool {
        self.inner.disposed.get()
    }

    /// `generate` for Rust callers (the `TaskExecutor`): `prompt` with `options`; each token
    /// goes out as a `token` event and to `on_token` (return `false` to stop); `signal` cancels
    /// between tokens.
    pub(super) async fn generate_request(
        &self,
        prompt: Prompt,
        options: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent<'_>) -> bool,
        signal: Option<&AbortSignal>,
    ) -> Result<GenerationOut, JsError> {
        generate_on(&self.inner, prompt, options, on_token, signal).await
    }

    /// [`LanguageModel.load`], for Rust callers.
    pub(super) async fn load_with(
        file: &GgufFile,
        status: Option<Rc<StatusStream>>,
        request: LoadRequest,
    ) -> Result<LanguageModel, JsError> {
        let LoadRequest { preference, context_length, key, signal, on_progress, announce } = request;
        let header = file.header();
        let cfg = ModelConfig::from_gguf(header)?;
        let tokenizer = Tokenizer::from_gguf(header)?;
        let template = ChatTemplate::detect(tokenizer.chat_template(), Some(cfg.arch.name())).ok();
        let key = key.unwrap_or_else(|| cfg.arch.name().to_owned());
        let context = context_length.unwrap_or(2048).min(cfg.context_length).max(1);
        let shape = Shape::for_context(context as usize);
        // The ModelManager told the device steps once, at create.
        let mut device = acquire(preference, if announce { status.clone() } else { None }).await?;
        if preference == Preference::Auto
            && runs_on_cpu_instead(&device, status.as_deref(), &format!("{key} runs"), Some(&key))
        {
            device = acquire(Preference::Cpu, None).await?;
        }
        if let Some(s) = &status
            && announce
        {
            s.info(format!("Loading model {key}..."), Some(&key));
        }
        let events = JsLoadEvents {
            key: &key,
            status: status.as_ref(),
            on_progress: on_progress.as_ref(),
            signal: signal.as_ref(),
        };
        let engine = match device.kind {
            BackendKind::Cpu => Engine::Cpu(Box::new(load_on(Cpu::new(), file, &cfg, shape, &events).await?)),
            _ => {
                let gpu = Gpu::new(device.device.clone())?;
                // Out-of-memory on buffer creation is a recoverable WebGPU error: caught in
                // this scope it fails the load (and frees what was uploaded) instead of
                // reaching cubecl's uncaptured-error handler, which panics.
                let scope = device
                    .wgpu
                    .as_ref()
                    .map(|d| d.push_error_scope(burn::tensor::wgpu::wgpu::ErrorFilter::OutOfMemory));
                let loaded = load_on(gpu, file, &cfg, shape, &events).await;
                let oom = match scope {
                    Some(scope) => scope.pop().await,
                    None => None,
                };
                if let Some(error) = oom {
                    drop(loaded);
                    return Err(JsError::of(
                        ErrorCode::OutOfMemory,
                        format!(
                            "The GPU ran out of memory loading {key} ({error}); what was uploaded is freed. Unload a model, use a shorter contextLength, or pick a smaller model."
                        ),
                    ));
                }
                Engine::Gpu(Box::new(loaded?))
            }
        };
        let (backend_name, weight_bytes, resident) = match &engine {
            Engine::Cpu(m) => (m.compute().describe(), m.weight_bytes(), m.compute().allocated_bytes()),
            Engine::Gpu(m) => (m.compute().describe(), m.weight_bytes(), m.compute().allocated_bytes()),
        };
        let backend_name = match (&engine, device.adapter.as_ref()) {
            (Engine::Gpu(_), Some(a)) => {
                format!("webgpu: {}", if a.name.is_empty() { &a.description } else { &a.name })
            }
            _ => backend_name,
        };
        let info = ModelInfo {
            key: key.clone(),
            architecture: cfg.arch.name().to_owned(),
            backend: backend_name,
            adapter: device.adapter.as_ref().map(|a| a.name.clone()),
            context_length: context,
            n_vocab: cfg.n_vocab,
            n_layer: cfg.n_layer,
            weight_bytes: weight_bytes as f64,
            resident_bytes: resident as f64,
            file_bytes: header.total_file_bytes() as f64,
        };
        if let Some(s) = &status {
            s.progress(Progress::new(Phase::Ready, weight_bytes, Some(weight_bytes)), Some(&key));
            if announce {
                s.info(format!("Model {key} loaded successfully."), Some(&key));
            }
        }
        let inner = Inner {
            engine: RefCell::new(Some(engine)),
            tokenizer,
            template,
            info: RefCell::new(info),
            busy: Cell::new(false),
            disposed: Cell::new(false),
            status,
        };
        Ok(LanguageModel { inner: Rc::new(inner) })
    }
}

#[wasm_bindgen]
impl LanguageModel {
    /// What was loaded: architecture, backend, adapter, context, weight and resident bytes.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> JsValue {
        self.inner.info.borrow().serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
    }

    /// Generates a continuation of `input` (a prompt string, or chat messages rendered with the
    /// model's template; a string with `chat: true` becomes one user message). Tokens go to
    /// `onToken({ text, tokenId, index })` (return `false` to stop) and, on the streamer given
    /// to `load`, out
    /// as `token` events and a final `done` event. `signal` cancels between tokens.
    /// Rejects with `InvalidInputError` (bad settings, context overflow), `CancelledError`,
    /// or `HearthError` when the model is busy or disposed.
    #[wasm_bindgen(unchecked_return_type = "Promise<GenerationResult>")]
    pub fn generate(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string | ChatMessage[]")] input: JsValue,
        options: Option<GenerateOptionsArg>,
    ) -> Promise {
        let model = self.handle();
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        wasm_bindgen_futures::future_to_promise(async move {
            let opts = GenerateOptions::read(&options)?;
            let signal: Option<AbortSignal> = field(&options, "signal").map(|v| v.unchecked_into());
            let on_token: Option<Function> = field(&options, "onToken").and_then(|v| v.dyn_into().ok());
            let prompt = Prompt::from_js(&input)?;
            let go_on = |t: &TokenEvent<'_>| {
                on_token.as_ref().and_then(|f| f.call1(&JsValue::NULL, &token_object(t)).ok()) != Some(JsValue::FALSE)
            };
            let out = model.generate_request(prompt, &opts, go_on, signal.as_ref()).await?;
            Ok(out.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL))
        })
    }

    /// Frees the weights, the KV cache and every buffer (the device memory is returned to the
    /// allocator). The model cannot generate afterwards.
    pub fn dispose(&self) {
        self.inner.disposed.set(true);
        self.inner.engine.borrow_mut().take();
    }

    /// Whether `dispose()` was called.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.disposed.get()
    }
}

/// Whether 'auto' should leave `device` for the CPU backend: a software WebGPU adapter
/// (SwiftShader, llvmpipe) is the CPU running a GPU emulator, and our wasm CPU backend is ~30x
/// faster there (measured on SmolLM2). Says so on `status` ("... so {subject} on the CPU").
pub(super) fn runs_on_cpu_instead(
    device: &Backend,
    status: Option<&StatusStream>,
    subject: &str,
    key: Option<&str>,
) -> bool {
    let Some(a) = device.adapter.as_ref().filter(|a| a.is_software()) else { return false };
    if let Some(s) = status {
        s.info(
            format!(
                "The WebGPU adapter ({}) is a software emulation; the CPU backend is faster here, so {subject} on the CPU. Pass backend: 'webgpu' to use WebGPU anyway.",
                if a.name.is_empty() { &a.description } else { &a.name }
            ),
            key,
        );
    }
    true
}

fn done_stats(g: &Generation) -> DoneStats {
    DoneStats {
        text: g.text.clone(),
        prompt_tokens: g.prompt_ids.len() as u32,
        generated_tokens: g.generated_ids.len() as u32,
        ttft_ms: g.timings.ttft_ms,
        prefill_tokens_per_second: g.timings.prefill_tok_s(),
        decode_tokens_per_second: g.timings.decode_tok_s(),
        stop_reason: g.stop_reason,
    }
}

#[derive(Deserialize)]
struct MessageIn {
    role: String,
    content: String,
}

/// What to continue: a prompt string, or chat messages rendered with the model's template.
pub(super) enum Prompt {
    Text(String),
    Messages(Vec<ChatMessage>),
}

impl Prompt {
    /// A prompt string or `[{ role, content }]` messages.
    pub(super) fn from_js(input: &JsValue) -> Result<Prompt, JsError> {
        if let Some(s) = input.as_string() {
            return Ok(Prompt::Text(s));
        }
        let m: Vec<MessageIn> = serde_wasm_bindgen::from_value(input.clone()).map_err(|e| {
            JsError::of(
                ErrorCode::InvalidPrompt,
                format!("The input must be a string or [{{ role, content }}] messages: {e}."),
            )
        })?;
        Ok(Prompt::Messages(m.into_iter().map(|m| ChatMessage::new(m.role, m.content)).collect()))
    }
}

/// A token as `onToken` and a task's iterator see it: `{ text, tokenId, index }`.
pub(super) fn token_object(t: &TokenEvent<'_>) -> JsValue {
    let o = js_sys::Object::new();
    let _ = Reflect::set(&o, &"text".into(), &t.text.into());
    let _ = Reflect::set(&o, &"tokenId".into(), &t.id.map_or(JsValue::NULL, JsValue::from));
    let _ = Reflect::set(&o, &"index".into(), &(t.index as u32).into());
    o.into()
}

fn prompt_text(inner: &Inner, prompt: Prompt, chat: bool) -> Result<String, JsError> {
    let messages: Vec<ChatMessage> = match prompt {
        Prompt::Text(s) if !chat => return Ok(s),
        Prompt::Text(s) => vec![ChatMessage::new("user", s)],
        Prompt::Messages(m) => m,
    };
    let template = inner.template.ok_or_else(|| {
        JsError::of(
            ErrorCode::UnsupportedChatTemplate,
            "This model has no chat template Hearth knows; pass a prompt string.",
        )
    })?;
    Ok(template.render(&messages, true)?)
}

/// The sampling settings of `generate`'s options (greedy unless they say otherwise). A field
/// that is `undefined` or `null` takes its default, as a missing one does.
fn sampler_params(options: &JsValue) -> Result<SamplerParams, JsError> {
    if !options.is_object() {
        return Ok(SamplerParams::greedy());
    }
    let given = js_sys::Object::new();
    for entry in js_sys::Object::entries(options.unchecked_ref()).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let value = pair.get(1);
        if !value.is_undefined() && !value.is_null() {
            let _ = Reflect::set(&given, &pair.get(0), &value);
        }
    }
    super::streamer::read_options(Some(given), "generate options")
}

/// The body of `generate`; see there.
async fn generate_on(
    inner: &Inner,
    prompt: Prompt,
    opts: &GenerateOptions,
    mut on_token: impl FnMut(&TokenEvent<'_>) -> bool,
    signal: Option<&AbortSignal>,
) -> Result<GenerationOut, JsError> {
    if inner.busy.get() {
        return Err(JsError::of(
            ErrorCode::ModelBusy,
            "This model is already generating; await the previous generate() (or queue it with a TaskExecutor).",
        ));
    }
    if inner.disposed.get() {
        return Err(JsError::of(ErrorCode::ModelDisposed, "This model was disposed; load it again to generate."));
    }
    let mut sampler = opts.sampler.clone();
    let status: Option<Rc<StatusStream>> = inner.status.clone();
    let text = prompt_text(inner, prompt, opts.chat.unwrap_or(false))?;
    let ids = inner.tokenizer.encode(&text, true, true);
    // Without a seed, each call samples differently.
    sampler.seed = sampler.seed.or_else(|| Some((js_sys::Math::random() * 9.0e15) as u64));
    let params = GenerateParams {
        max_tokens: opts.max_tokens.unwrap_or(256) as usize,
        sampler,
        stop: opts.stop.clone(),
        ignore_eog: opts.ignore_eos,
    };
    let key = inner.info.borrow().key.clone();
    let Some(mut engine) = inner.engine.borrow_mut().take() else {
        return Err(JsError::of(ErrorCode::ModelDisposed, "This model was disposed; load it again to generate."));
    };
    inner.busy.set(true);
    let result = {
        let mut cb = |t: &TokenEvent<'_>| -> bool {
            if let Some(s) = &status
                && let Some(id) = t.id
            {
                s.token(
                    status::TokenEvent { text: t.text.to_owned(), token_id: id, index: t.index as u32 },
                    Some(&key),
                );
            }
            // `dispose()` during the generation stops it between tokens, like a cancellation.
            let go_on = !cancelled(signal) && !inner.disposed.get();
            on_token(t) && go_on
        };
        match &mut engine {
            Engine::Cpu(m) => generate(&mut **m, &inner.tokenizer, &ids, &params, &now_ms, &mut cb).await,
            Engine::Gpu(m) => generate(&mut **m, &inner.tokenizer, &ids, &params, &now_ms, &mut cb).await,
        }
    };
    inner.busy.set(false);
    if inner.disposed.get() {
        // Disposed while generating: the weights and caches go now, not when the engine returns.
        drop(engine);
        return Err(JsError::of(ErrorCode::ModelDisposed, "The model was disposed during the generation."));
    }
    *inner.engine.borrow_mut() = Some(engine);
    let g: Generation = result.map_err(JsError::from)?;
    if g.stop_reason == StopReason::Cancelled && cancelled(signal) {
        if let Some(s) = &status {
            s.done(done_stats(&g), Some(&key));
        }
        return Err(JsError::of(ErrorCode::Aborted, "Generation was cancelled.").with("text", g.text.clone()));
    }
    if let Some(s) = &status {
        s.done(done_stats(&g), Some(&key));
    }
    let out = GenerationOut {
        text: g.text.clone(),
        prompt_ids: g.prompt_ids.clone(),
        generated_ids: g.generated_ids.clone(),
        prompt_tokens: g.prompt_ids.len() as u32,
        generated_tokens: g.generated_ids.len() as u32,
        stop_reason: g.stop_reason,
        ttft_ms: g.timings.ttft_ms,
        prefill_tokens_per_second: g.timings.prefill_tok_s(),
        decode_tokens_per_second: g.timings.decode_tok_s(),
        backend: inner.info.borrow().backend.clone(),
    };
    Ok(out)
}
