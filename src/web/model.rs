//! `LanguageModel`: a GGUF model loaded onto the page's device, generating text.
//!
//! Loading is the core loader ([`crate::infer::load`]) reading the [`GgufFile`]'s source (URL
//! ranges, a Blob or bytes in memory), narrating progress on the status stream; generation
//! streams tokens to a callback and as `token` events, then a `done` event with the timings.

use std::rc::Rc;

use js_sys::{Function, Promise};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use web_sys::AbortSignal;

use crate::error::ErrorCode;
use crate::infer::KvCache;
use crate::infer::cpu::team::MAX_THREADS;
use crate::infer::gpu::Kernels;
use crate::infer::session::{
    GenerateOptions, GenerationOut, Hooks, LoadHooks, LoadOptions, LoadPlan, LoadedModel, MessageIn, Prompt,
};
use crate::infer::{SamplerParams, TokenEvent};
use crate::status::{Progress, StatusStream};

use super::device::{Preference, acquire};
use super::error::JsError;
use super::gguf::GgufFile;
use super::streamer::{SseStreamer, field};
use super::types::{BackendArg, GenerateOptionsArg, LoadOptionsArg};

/// A model on the page's device. Create with `LanguageModel.load(file, options)`.
#[wasm_bindgen]
pub struct LanguageModel {
    pub(super) inner: Rc<LoadedModel>,
}

/// A generation as JS asks for it (`generate(input, options)`, or a task's `prompt | messages`
/// and `params`), read and checked once: `LanguageModel.generate` reads its arguments with it and
/// `TaskExecutor.enqueue` a task's, so a bad task is refused before it is queued, let alone its
/// model loaded.
pub(super) struct GenerateRequest {
    pub prompt: Prompt,
    /// The options (`undefined` gives the defaults: greedy, 256 tokens), the sampling checked.
    pub options: GenerateOptions,
    /// The options' `onToken({ text, tokenId, index })`.
    on_token: Option<Function>,
}

impl GenerateRequest {
    /// Reads `input` (a prompt string or `[{ role, content }]` messages) and `options`;
    /// `InvalidInputError` for a bad one (the options' shape first, then the input, then the
    /// sampling ranges).
    pub(super) fn read(input: &JsValue, options: &JsValue) -> Result<GenerateRequest, JsError> {
        let mut opts: GenerateOptions = super::streamer::read_options(Some(options.clone()), "generate options")?;
        opts.sampler = sampler_params(options)?;
        let on_token = field(options, "onToken").and_then(|v| v.dyn_into().ok());
        let prompt = prompt_from_js(input)?;
        opts.sampler.validate()?;
        Ok(GenerateRequest { prompt, options: opts, on_token })
    }

    /// Generates on `model`: each token (`{ text, tokenId, index }`) goes out as a `token` event,
    /// to `also` and to `onToken` (which stops it by returning `false`); `signal` cancels between
    /// tokens. Without a seed in the options, each call samples differently.
    pub(super) async fn generate(
        &self,
        model: &LoadedModel,
        also: impl Fn(&JsValue),
        signal: Option<&AbortSignal>,
    ) -> Result<GenerationOut, JsError> {
        let mut on_token = |t: &TokenEvent<'_>| {
            let token = super::convert::to_js(t).unwrap_or(JsValue::NULL);
            also(&token);
            self.on_token.as_ref().and_then(|f| f.call1(&JsValue::NULL, &token).ok()) != Some(JsValue::FALSE)
        };
        let seed = (js_sys::Math::random() * 9.0e15) as u64;
        let hooks = Hooks {
            now_ms: &now_ms,
            cancelled: &|| signal.is_some_and(AbortSignal::aborted),
            on_token: &mut on_token,
            seed,
        };
        Ok(model.generate(self.prompt.clone(), &self.options, hooks).await?)
    }
}

/// `performance.now()` (monotonic, sub-millisecond), in a window or a worker.
fn now_ms() -> f64 {
    let performance = field(&js_sys::global(), "performance").and_then(|p| p.dyn_into::<web_sys::Performance>().ok());
    performance.map_or_else(js_sys::Date::now, |p| p.now())
}

#[wasm_bindgen]
impl LanguageModel {
    /// Loads `file`'s weights onto the device, narrating every step on `streamer`.
    /// Options: `backend` ('auto' | 'webgpu' | 'cpu'), `contextLength` (default min(2048, the model's)), `key` (the name in status
    /// events), `kvCache` ('f32' | 'f16', the KV cache's precision), `threads` (the CPU engine's,
    /// 1 to 16; default `navigator.hardwareConcurrency`, at most 8; more than 1 only on a
    /// cross-origin isolated page), `signal`, `onProgress({ phase, loaded, total, percent })`.
    /// Rejects with `ModelFormatError` (unsupported architecture, missing or misshapen tensors,
    /// a tensor type without a kernel), `DownloadError`, `CancelledError`, `GpuUnavailableError`,
    /// `InvalidInputError` (an option out of range, `threads` outside 1..16).
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
                kernels: opts.kernels.unwrap_or_default(),
                decode_graphs: opts.decode_graphs,
                kv_cache: opts
                    .kv_cache
                    .as_deref()
                    .map(KvCache::parse)
                    .transpose()
                    .map_err(JsError::from)?
                    .unwrap_or_default(),
                threads: opts
                    .threads
                    .map(|t| crate::input::threads(t, MAX_THREADS))
                    .transpose()
                    .map_err(JsError::from)?,
                signal: field(&opts_js, "signal").map(|v| v.unchecked_into()),
                on_progress: field(&opts_js, "onProgress").and_then(|v| v.dyn_into().ok()),
                announce: true,
            };
            Ok(LanguageModel { inner: load_with(&file, status, request).await? }.into())
        })
    }
}

/// What [`load_with`] needs besides the file: `LanguageModel.load`'s options,
/// already read, or the `ModelManager`'s.
pub(super) struct LoadRequest {
    pub preference: Preference,
    pub context_length: Option<u32>,
    pub key: Option<String>,
    pub kernels: Kernels,
    /// `LoadOptions.decodeGraphs` (`None`: the GPU's default).
    pub decode_graphs: Option<bool>,
    /// The KV cache's type (`LoadOptions.kvCache`).
    pub kv_cache: KvCache,
    /// `LoadOptions.threads`, checked (`None`: the CPU engine's default).
    pub threads: Option<u32>,
    pub signal: Option<AbortSignal>,
    pub on_progress: Option<Function>,
    /// Whether to say "Loading model <key>..." and "Model <key> loaded successfully."
    /// ([`LoadHooks::announce`]).
    pub announce: bool,
}

/// [`LanguageModel.load`], for Rust callers: the core [`LoadedModel::load`] on the page's device,
/// reading `file`'s source.
pub(super) async fn load_with(
    file: &GgufFile,
    status: Option<Rc<StatusStream>>,
    request: LoadRequest,
) -> Result<Rc<LoadedModel>, JsError> {
    let LoadRequest {
        preference,
        context_length,
        key,
        kernels,
        decode_graphs,
        kv_cache,
        threads,
        signal,
        on_progress,
        announce,
    } = request;
    let mut plan = LoadPlan { kernels, threads, decode_graphs, ..LoadPlan::new(file.header(), key, context_length)? };
    plan.shape.kv = kv_cache;
    // The ModelManager told the device steps once, at create.
    let device = acquire(preference, if announce { status.clone() } else { None }).await?;
    let device = plan.device_for(preference, device, status.as_deref());
    // `onProgress({ phase, loaded, total, percent })` beside the status stream's `progress`.
    // (An upload's total is known, so the object always has all four.)
    let on_progress = |p: &Progress| {
        if let (Some(f), Ok(o)) = (&on_progress, super::convert::to_js(p)) {
            let _ = f.call1(&JsValue::NULL, &o);
        }
    };
    let signal = signal.as_ref();
    let hooks =
        LoadHooks { on_progress: &on_progress, cancelled: &|| signal.is_some_and(AbortSignal::aborted), announce };
    Ok(Rc::new(LoadedModel::load(plan, &device, file.header(), &file.reading(signal), hooks, status).await?))
}

#[wasm_bindgen]
impl LanguageModel {
    /// What was loaded: architecture, backend, adapter, context, weight and resident bytes.
    #[wasm_bindgen(getter, unchecked_return_type = "ModelInfo")]
    pub fn info(&self) -> JsValue {
        self.inner.info().serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap_or(JsValue::NULL)
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
        let model = self.inner.clone();
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        wasm_bindgen_futures::future_to_promise(async move {
            let request = GenerateRequest::read(&input, &options)?;
            let signal: Option<AbortSignal> = field(&options, "signal").map(|v| v.unchecked_into());
            let out = request.generate(&model, |_| {}, signal.as_ref()).await?;
            Ok(super::convert::to_js(&out)?)
        })
    }

    /// Frees the weights, the KV cache and every buffer (the device memory is returned to the
    /// allocator). The model cannot generate afterwards.
    pub fn dispose(&self) {
        self.inner.dispose();
    }

    /// Whether `dispose()` was called.
    #[wasm_bindgen(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_disposed()
    }
}

/// A prompt string or `[{ role, content }]` messages.
fn prompt_from_js(input: &JsValue) -> Result<Prompt, JsError> {
    if let Some(s) = input.as_string() {
        return Ok(Prompt::Text(s));
    }
    let m: Vec<MessageIn> = serde_wasm_bindgen::from_value(input.clone()).map_err(|e| {
        JsError::of(
            ErrorCode::InvalidPrompt,
            format!("The input must be a string or [{{ role, content }}] messages: {e}."),
        )
    })?;
    Ok(Prompt::from(m))
}

/// The sampling settings of `generate`'s options (greedy unless they say otherwise). A field
/// that is `undefined` or `null` takes its default, as a missing one does.
fn sampler_params(options: &JsValue) -> Result<SamplerParams, JsError> {
    if !options.is_object() {
        return Ok(SamplerParams::greedy());
    }
    let defined = |entry: &JsValue| !js_sys::Reflect::get_u32(entry, 1).is_ok_and(|v| v.is_undefined() || v.is_null());
    let given: js_sys::Array = js_sys::Object::entries(options.unchecked_ref()).iter().filter(defined).collect();
    super::streamer::read_options(js_sys::Object::from_entries(&given).ok(), "generate options")
}
