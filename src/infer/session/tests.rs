//! The loaded model on the CPU backend over the tiny llama fixture (`tools/make_fixtures.py`:
//! random weights, SmolLM2's tokenizer): the plan, the info, the status events, cancellation,
//! the user's stop, busy and dispose. The fixture lives in `$HEARTH_FIXTURES_DIR` (default
//! `.cache/fixtures`); a missing fixture fails the test unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

use futures::FutureExt;
use futures::executor::block_on;

use super::*;
use crate::error::{Coded, Detail, ErrorCode};
use crate::infer::{InferError, read_header_from};
use crate::status::{Payload, Recorder, StatusStream};

fn fixture() -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HEARTH_FIXTURES_DIR").map_or_else(|| root.join(".cache/fixtures"), PathBuf::from);
    let path = dir.join("llama-f32.gguf");
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (python3 tools/make_fixtures.py)", path.display())))
}

/// The fixture loaded on the CPU with a context of 64, telling `recorder`.
fn load(bytes: &[u8], recorder: &Recorder) -> LoadedModel {
    let header = block_on(read_header_from(bytes)).unwrap();
    let plan = LoadPlan::new(&header, Some("tiny".into()), Some(64)).unwrap();
    let status = Rc::new(StatusStream::new(Box::new(recorder.clone()), 256, || 0.0));
    let hooks = LoadHooks { on_progress: &|_| {}, cancelled: &|| false, announce: false };
    block_on(LoadedModel::load(plan, &Backend::cpu(), &header, bytes, hooks, Some(status))).unwrap()
}

fn clock() -> f64 {
    0.0
}

fn greedy(max_tokens: u32) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), ignore_eos: true, ..GenerateOptions::default() }
}

fn run(
    model: &LoadedModel,
    opts: &GenerateOptions,
    stop_at: Option<usize>,
    cancel: bool,
) -> Result<GenerationOut, SessionError> {
    let mut on_token = |t: &TokenEvent<'_>| stop_at.is_none_or(|n| t.index + 1 < n);
    let hooks = Hooks { now_ms: &clock, cancelled: &|| cancel, on_token: &mut on_token, seed: 7 };
    block_on(model.generate(Prompt::Text("Hello there".into()), opts, hooks))
}

#[test]
fn the_plan_clamps_the_context_and_names_the_model() {
    let Some(bytes) = fixture() else { return };
    let header = block_on(read_header_from(&bytes[..])).unwrap();
    let plan = LoadPlan::new(&header, None, Some(1 << 20)).unwrap();
    assert_eq!(plan.key, "llama");
    assert_eq!(plan.context, plan.cfg.context_length);
    let plan = LoadPlan::new(&header, Some("k".into()), Some(0)).unwrap();
    assert_eq!((plan.key.as_str(), plan.context), ("k", 1));
    let plan = LoadPlan::new(&header, None, None).unwrap();
    assert_eq!(plan.context, DEFAULT_CONTEXT.min(plan.cfg.context_length));
}

#[test]
fn a_buffer_over_a_device_limit_is_refused_before_anything_is_allocated() {
    let Some(bytes) = fixture() else { return };
    let header = block_on(read_header_from(&bytes[..])).unwrap();
    let plan = LoadPlan::new(&header, Some("fx".into()), None).unwrap();
    assert_eq!(plan.check_limits(&header, &crate::memory::DeviceLimits::UNLIMITED), Ok(()));
    // One layer's K cache is context x kv_dim x 4 bytes: a binding limit just below it refuses.
    let kv_layer = u64::from(plan.context) * plan.cfg.kv_dim() * 4;
    let limits =
        crate::memory::DeviceLimits { max_buffer_size: u64::MAX, max_storage_buffer_binding_size: kv_layer - 4 };
    let e = plan.check_limits(&header, &limits).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ExceedsDeviceLimit);
    let message = e.to_string();
    assert!(message.starts_with("Cannot load fx: ") && message.contains("KV cache"), "{message}");
}

#[test]
fn a_generation_streams_tokens_then_done_and_returns_the_timings() {
    let Some(bytes) = fixture() else { return };
    let recorder = Recorder::new();
    let model = load(&bytes, &recorder);
    let info = model.info().clone();
    assert_eq!((info.key.as_str(), info.architecture.as_str(), info.context_length), ("tiny", "llama", 64));
    assert_eq!(info.backend, Cpu::new().describe());
    assert!(info.weight_bytes > 0.0 && info.resident_bytes >= info.weight_bytes);
    let out = run(&model, &greedy(5), None, false).unwrap();
    assert_eq!((out.generated_tokens, out.stop_reason), (5, StopReason::MaxTokens));
    assert_eq!(out.prompt_tokens as usize, out.prompt_ids.len());
    assert_eq!(out.backend, info.backend);
    let events = recorder.events();
    // The load's upload progress and memory, ready, then the generation's events.
    let ready = events.iter().position(|e| matches!(&e.payload, Payload::Progress(p) if p.phase == Phase::Ready));
    assert!(matches!(&events[ready.unwrap() + 1].payload, Payload::Token(_)));
    let tokens: Vec<u32> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Token(t) => Some(t.token_id),
            _ => None,
        })
        .collect();
    assert_eq!(tokens, out.generated_ids);
    let Payload::Done(done) = &events.last().unwrap().payload else { panic!("no done event last") };
    assert_eq!((done.text.as_str(), done.generated_tokens), (out.text.as_str(), 5));
    assert!(events.iter().all(|e| e.model_key.as_deref() == Some("tiny")));
    // Greedy is deterministic; the model is free again.
    assert!(!model.is_busy());
    assert_eq!(run(&model, &greedy(5), None, false).unwrap().generated_ids, out.generated_ids);
}

#[test]
fn the_callers_stop_resolves_and_its_cancellation_rejects_with_the_text() {
    let Some(bytes) = fixture() else { return };
    let recorder = Recorder::new();
    let model = load(&bytes, &recorder);
    let out = run(&model, &greedy(8), Some(3), false).unwrap();
    assert_eq!((out.generated_tokens, out.stop_reason), (3, StopReason::Cancelled));
    let err = run(&model, &greedy(8), None, true).unwrap_err();
    assert!(matches!(&err, SessionError::Cancelled { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::Aborted);
    // The cancelled generation still told its `done`.
    assert!(
        matches!(&recorder.events().last().unwrap().payload, Payload::Done(d) if d.stop_reason == StopReason::Cancelled)
    );
}

#[test]
fn the_next_generation_reuses_the_cache_and_samples_as_a_fresh_one_would() {
    let Some(bytes) = fixture() else { return };
    let recorder = Recorder::new();
    let model = load(&bytes, &recorder);
    // Sampling with a repetition penalty over the whole prompt: the history the sampler sees
    // does not depend on what the cache held.
    let mut opts = greedy(6);
    opts.sampler.temperature = 0.9;
    opts.sampler.repetition_penalty = 1.5;
    opts.sampler.seed = Some(11);
    let first = run(&model, &opts, None, false).unwrap();
    assert_eq!(first.cached_tokens, 0);
    let again = run(&model, &opts, None, false).unwrap();
    assert_eq!(again.cached_tokens, again.prompt_tokens - 1);
    let events = recorder.events();
    let Payload::Done(done) = &events.last().unwrap().payload else { panic!("no done event last") };
    assert_eq!(done.cached_tokens, again.cached_tokens, "the done event says what the cache served");
    assert_eq!(again.generated_ids, first.generated_ids);
    // A cancelled generation says what it kept; turning reuse off prefills everything.
    let Err(SessionError::Cancelled { prompt_tokens, cached_tokens, generated_tokens, .. }) =
        run(&model, &opts, None, true)
    else {
        panic!("not cancelled")
    };
    assert_eq!((cached_tokens, generated_tokens), (prompt_tokens - 1, 1));
    opts.cache_prompt = Some(false);
    let fresh = run(&model, &opts, None, false).unwrap();
    assert_eq!((fresh.cached_tokens, fresh.generated_ids), (0, first.generated_ids));
}

#[test]
fn settings_and_context_errors_are_typed_and_leave_the_model_usable() {
    let Some(bytes) = fixture() else { return };
    let model = load(&bytes, &Recorder::new());
    let err = run(&model, &greedy(1000), None, false).unwrap_err();
    assert!(matches!(err, SessionError::Infer(InferError::ContextOverflow { context: 64, .. })), "{err:?}");
    let mut bad = greedy(4);
    bad.sampler.temperature = -1.0;
    assert!(matches!(run(&model, &bad, None, false), Err(SessionError::Infer(InferError::InvalidInput { .. }))));
    assert!(run(&model, &greedy(2), None, false).is_ok());
}

#[test]
fn chat_input_needs_a_template() {
    let Some(bytes) = fixture() else { return };
    let model = load(&bytes, &Recorder::new());
    let messages = Prompt::Messages(vec![ChatMessage::new("user", "hi")]);
    match model.template {
        Some(t) => assert_eq!(
            model.prompt_text(messages, false).unwrap(),
            t.render(&[ChatMessage::new("user", "hi")], true).unwrap()
        ),
        None => assert_eq!(model.prompt_text(messages, false), Err(SessionError::NoChatTemplate)),
    }
    assert_eq!(model.prompt_text(Prompt::Text("plain".into()), false).unwrap(), "plain");
}

#[test]
fn dispose_during_a_generation_stops_it_and_frees_the_model() {
    let Some(bytes) = fixture() else { return };
    let model = load(&bytes, &Recorder::new());
    let seen = Cell::new(0);
    let mut on_token = |t: &TokenEvent<'_>| {
        // The held-back text flushed at the end comes without an id.
        seen.set(seen.get() + usize::from(t.id.is_some()));
        if seen.get() == 2 {
            model.dispose();
        }
        true
    };
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 1 };
    let err = block_on(model.generate(Prompt::Text("Hi".into()), &greedy(8), hooks)).unwrap_err();
    assert_eq!(err, SessionError::DisposedDuring);
    // Asked before the callback that disposed, the check stops the generation at the next token.
    assert_eq!(seen.get(), 3);
    assert!(model.is_disposed() && !model.is_busy() && model.engine.borrow().is_none());
    assert_eq!(run(&model, &greedy(2), None, false).unwrap_err(), SessionError::Disposed);
    assert_eq!(SessionError::Disposed.code(), ErrorCode::ModelDisposed);
    assert_eq!(SessionError::Infer(InferError::Cancelled).code(), InferError::Cancelled.code());
    let cancelled =
        SessionError::Cancelled { text: "so far".into(), prompt_tokens: 5, cached_tokens: 2, generated_tokens: 3 };
    assert_eq!((cancelled.code(), cancelled.message().as_str()), (ErrorCode::Aborted, "Generation was cancelled."));
    assert_eq!(
        cancelled.details(),
        [
            ("text", Detail::from("so far")),
            ("promptTokens", Detail::from(5u64)),
            ("cachedTokens", Detail::from(2u64)),
            ("generatedTokens", Detail::from(3u64)),
        ]
    );
    let load = SessionError::LoadCancelled { key: "m".into() };
    assert_eq!((load.code(), load.message().as_str()), (ErrorCode::Aborted, "Loading m was cancelled."));
}

#[test]
fn a_second_generation_while_one_runs_is_busy() {
    let Some(bytes) = fixture() else { return };
    let model = load(&bytes, &Recorder::new());
    let inner = Cell::new(None);
    let mut on_token = |t: &TokenEvent<'_>| {
        if t.index == 0 {
            let mut ignore = |_: &TokenEvent<'_>| true;
            let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut ignore, seed: 1 };
            // Refused before its first await.
            inner.set(model.generate(Prompt::Text("Hi".into()), &greedy(1), hooks).now_or_never());
        }
        true
    };
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 1 };
    assert!(block_on(model.generate(Prompt::Text("Hi".into()), &greedy(2), hooks)).is_ok());
    assert_eq!(inner.take().unwrap().unwrap_err(), SessionError::Busy);
}

#[test]
fn options_become_parameters_with_the_callers_seed_as_a_fallback() {
    let p = GenerateOptions::default().params(9);
    assert_eq!((p.max_tokens, p.sampler.seed, p.ignore_eog), (DEFAULT_MAX_TOKENS as usize, Some(9), false));
    let mut o =
        GenerateOptions { max_tokens: Some(3), stop: vec!["\n".into()], ignore_eos: true, ..Default::default() };
    o.sampler.seed = Some(1);
    let p = o.params(9);
    assert_eq!((p.max_tokens, p.sampler.seed, p.stop, p.ignore_eog), (3, Some(1), vec!["\n".to_string()], true));
}

#[test]
fn the_load_reports_upload_progress_and_memory_and_stops_when_cancelled() {
    let Some(bytes) = fixture() else { return };
    let header = block_on(read_header_from(&bytes[..])).unwrap();
    let plan = LoadPlan::new(&header, Some("tiny".into()), Some(16)).unwrap();
    let recorder = Recorder::new();
    let status = Rc::new(StatusStream::new(Box::new(recorder.clone()), 256, || 0.0));
    let seen = std::cell::RefCell::new(Vec::new());
    let on_progress = |p: &Progress| seen.borrow_mut().push((p.loaded, p.total));
    let hooks = LoadHooks { on_progress: &on_progress, cancelled: &|| false, announce: true };
    let device = Backend::cpu();
    let loaded = block_on(LoadedModel::load(plan, &device, &header, &bytes[..], hooks, Some(status))).unwrap();
    let seen = seen.into_inner();
    let total = seen.last().unwrap().1.unwrap();
    assert_eq!(seen.first(), Some(&(0, Some(total))));
    assert_eq!(seen.last(), Some(&(total, Some(total))));
    let events = recorder.events();
    assert!(matches!(&events[0].payload, Payload::Info(m) if m == "Loading model tiny..."));
    let progress =
        events.iter().filter(|e| matches!(&e.payload, Payload::Progress(p) if p.phase == Phase::Upload)).count();
    assert_eq!(progress, seen.len());
    assert!(events.iter().any(|e| matches!(&e.payload, Payload::Metrics(m) if m.used_bytes > 0)));
    let ready = events.iter().rposition(|e| matches!(&e.payload, Payload::Progress(p) if p.phase == Phase::Ready));
    assert_eq!(ready, Some(events.len() - 2), "ready, then the announcement");
    assert!(loaded.info().backend.starts_with("cpu"), "{}", loaded.info().backend);
    assert_eq!(recorder.infos().last().unwrap(), "Model tiny loaded successfully.");

    let plan = LoadPlan::new(&header, None, Some(16)).unwrap();
    let hooks = LoadHooks { on_progress: &|_| {}, cancelled: &|| true, announce: false };
    let err = block_on(LoadedModel::load(plan, &device, &header, &bytes[..], hooks, None)).err();
    assert_eq!(err, Some(ModelLoadError::Session(SessionError::LoadCancelled { key: "llama".into() })));
}

#[test]
fn load_options_read_the_context_and_key() {
    let o: LoadOptions = serde_json::from_str(r#"{"contextLength":512,"key":"k","backend":"cpu"}"#).unwrap();
    assert_eq!(
        o,
        LoadOptions {
            context_length: Some(512),
            key: Some("k".into()),
            kernels: None,
            kv_cache: None,
            threads: None,
            decode_graphs: None
        }
    );
    let o: LoadOptions = serde_json::from_str(r#"{"kvCache":"f16"}"#).unwrap();
    assert_eq!(o.kv_cache.as_deref(), Some("f16"));
    assert_eq!(serde_json::from_str::<LoadOptions>("{}").unwrap(), LoadOptions::default());
    let o: LoadOptions = serde_json::from_str(r#"{"kernels":"rows"}"#).unwrap();
    assert_eq!(o.kernels, Some(crate::infer::gpu::Kernels::Rows));
    let o: LoadOptions = serde_json::from_str(r#"{"kernels":"subgroup"}"#).unwrap();
    assert_eq!(o.kernels, Some(crate::infer::gpu::Kernels::Subgroup));
    let o: LoadOptions = serde_json::from_str(r#"{"kernels":"f16"}"#).unwrap();
    assert_eq!(o.kernels, Some(crate::infer::gpu::Kernels::F16));
    let o: LoadOptions = serde_json::from_str(r#"{"decodeGraphs":true}"#).unwrap();
    assert_eq!(o.decode_graphs, Some(true));
    assert!(serde_json::from_str::<LoadOptions>(r#"{"kernels":"tensor"}"#).is_err());
}

#[test]
fn messages_become_a_chat_prompt_and_the_out_of_memory_error_says_what_to_do() {
    let prompt = Prompt::from(vec![MessageIn { role: "user".into(), content: "hi".into() }]);
    assert_eq!(prompt, Prompt::Messages(vec![ChatMessage::new("user", "hi")]));
    let oom = SessionError::OutOfMemory { key: "m".into(), detail: "no room".into() };
    assert_eq!(oom.code(), ErrorCode::OutOfMemory);
    assert!(oom.to_string().starts_with("The GPU ran out of memory loading m (no room)"), "{oom}");
}

#[test]
fn a_token_reads_as_text_token_id_and_index() {
    let flush = TokenEvent { text: "é", id: None, index: 2 };
    assert_eq!(serde_json::to_string(&flush).unwrap(), r#"{"text":"é","tokenId":null,"index":2}"#);
    let token = TokenEvent { text: "hi", id: Some(7), index: 0 };
    assert_eq!(serde_json::to_string(&token).unwrap(), r#"{"text":"hi","tokenId":7,"index":0}"#);
}

#[test]
fn auto_leaves_a_software_adapter_for_the_cpu_and_says_so() {
    let Some(bytes) = fixture() else { return };
    let header = block_on(read_header_from(&bytes[..])).unwrap();
    let plan = LoadPlan::new(&header, Some("m".into()), Some(16)).unwrap();
    let recorder = Recorder::new();
    let status = StatusStream::with_sink(Box::new(recorder.clone()));
    let adapter = crate::backend::AdapterInfo {
        name: "SwiftShader Device (Subzero)".into(),
        vendor: "google".into(),
        architecture: "swiftshader".into(),
        description: String::new(),
        backend: "BrowserWebGpu".into(),
        max_buffer_size: 1 << 30,
        max_storage_buffer_binding_size: 128 << 20,
        shader_f16: false,
        subgroups: None,
        is_fallback_adapter: false,
    };
    let soft = Rc::new(Backend { adapter: Some(adapter), ..Backend::cpu() });
    let kept = plan.device_for(crate::device::Preference::Webgpu, soft.clone(), Some(&status));
    assert!(Rc::ptr_eq(&kept, &soft), "asked for WebGPU: kept");
    assert!(recorder.infos().is_empty());
    let cpu = plan.device_for(crate::device::Preference::Auto, soft.clone(), Some(&status));
    assert!(cpu.adapter.is_none());
    assert!(recorder.infos()[0].contains("so m runs on the CPU"), "{:?}", recorder.infos());
    // A ModelManager decides once for all its models.
    assert_eq!(models_run_on(&soft, &status), crate::device::Preference::Cpu);
    assert!(recorder.infos()[1].contains("so models run on the CPU"), "{:?}", recorder.infos());
    assert_eq!(models_run_on(&Backend::cpu(), &status), crate::device::Preference::Cpu, "no adapter");
}

/// An uncaptured device error recorded while a model generates fails that generation with a
/// typed error and an `error` event (the handler's side is `tests/device_faults.rs`, on a real
/// device); the model keeps working, and a later generation is not failed by the old error.
#[test]
fn a_device_fault_during_a_generation_fails_it_and_the_model_goes_on() {
    use crate::backend::{DeviceFaults, GpuFault, GpuFaultKind};
    let Some(bytes) = fixture() else { return };
    let recorder = Recorder::new();
    let faults = DeviceFaults::default();
    let model = load(&bytes, &recorder).with_faults(faults.clone());
    let fault = GpuFault { kind: GpuFaultKind::Validation, message: "Buffer usages are invalid".into() };
    // The device reports the error while the second token is being produced.
    let mut on_token = |t: &TokenEvent<'_>| {
        if t.index == 1 {
            faults.record(fault.clone());
        }
        true
    };
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 7 };
    let err = block_on(model.generate(Prompt::Text("Hello there".into()), &greedy(8), hooks)).unwrap_err();
    assert_eq!(err, SessionError::DeviceFault { key: "tiny".into(), fault: fault.clone() });
    assert_eq!(err.code(), ErrorCode::GpuError);
    assert_eq!(err.code().as_str(), "GPU_ERROR");
    assert!(err.message().contains("Buffer usages are invalid"), "{}", err.message());
    assert_eq!(
        err.details(),
        vec![("gpuErrorKind", Detail::from("validation")), ("gpuMessage", Detail::from("Buffer usages are invalid"))]
    );
    // It stopped at the next token: no token event after the fault's.
    let tokens = recorder.events().iter().filter(|e| matches!(e.payload, Payload::Token(_))).count();
    assert_eq!(tokens, 2, "the tokens before the fault, none after");
    let last = recorder.events().last().cloned().unwrap();
    assert!(
        matches!(&last.payload, Payload::Error(e) if e.code.as_deref() == Some("GPU_ERROR") && e.name == "GpuError" && e.message == err.message()),
        "{last:?}"
    );
    assert_eq!(last.model_key.as_deref(), Some("tiny"));
    assert!(!model.is_busy() && !model.is_disposed());

    // The model goes on: the old error does not fail the next generation, which trusts nothing
    // the faulted one left in the KV cache.
    let out = run(&model, &greedy(4), None, false).unwrap();
    assert_eq!((out.generated_tokens, out.cached_tokens), (4, 0));

    // An out-of-memory error no scope caught is an OutOfMemoryError.
    let mut on_token = |_: &TokenEvent<'_>| {
        faults.record(GpuFault { kind: GpuFaultKind::OutOfMemory, message: "Out of Memory".into() });
        true
    };
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 7 };
    let err = block_on(model.generate(Prompt::Text("Hi".into()), &greedy(8), hooks)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutOfMemory);
    assert_eq!(err.code().class(), crate::error::ErrorClass::OutOfMemory);
}
