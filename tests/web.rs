//! Browser tests: run with `wasm-pack test --headless --chrome` (see `./run test`).
//! They use the real WebGPU adapter Chromium exposes with `--enable-unsafe-webgpu`
//! and fail — never skip — when there is none.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use hearth::backend::matmul_check;
use hearth::status::sse::Parser;
use hearth::web::{Preference, SseStreamer, acquire, check_device, init_device};
use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o.into()
}

/// A callback that records every argument it is called with.
fn recorder() -> (Function, Rc<RefCell<Vec<JsValue>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let f = Closure::<dyn Fn(JsValue)>::new(move |v: JsValue| sink.borrow_mut().push(v));
    (f.into_js_value().unchecked_into(), seen)
}

fn backend(name: &str) -> Option<hearth::web::BackendArg> {
    Some(JsValue::from_str(name).unchecked_into())
}

fn streamer() -> SseStreamer {
    SseStreamer::new(None).map_err(JsValue::from).unwrap()
}

fn error_name(e: &JsValue) -> String {
    get(e, "name").as_string().unwrap_or_default()
}

// ---------------------------------------------------------------- WebGPU

#[wasm_bindgen_test]
async fn webgpu_adapter_exists_and_its_matmul_matches_the_reference() {
    let info = JsFuture::from(init_device(&streamer(), backend("webgpu")))
        .await
        .expect("a WebGPU adapter is required: is --enable-unsafe-webgpu in webdriver.json?");
    assert_eq!(get(&info, "kind").as_string().as_deref(), Some("webgpu"));
    let adapter = get(&info, "adapter");
    assert!(get(&adapter, "maxStorageBufferBindingSize").as_f64().unwrap() >= 128.0 * 1024.0 * 1024.0);

    // The page's device and the CPU engine, each through Hearth's own matrix product:
    // both against an f64 reference.
    let gpu = acquire(Preference::Webgpu, None).await.map_err(JsValue::from).unwrap();
    for backend in [&*gpu, &hearth::backend::Backend::cpu()] {
        let check = matmul_check(backend, 37, 300, 29, 3).await.unwrap();
        assert!(check.max_abs_error < 1e-3, "{:?}: {check:?}", backend.kind);
        assert!(check.passed(), "{:?}: {check:?}", backend.kind);
    }

    // The library's own self-check, through its JS entry point.
    let check = JsFuture::from(check_device(backend("webgpu"), Some(64), Some(512), Some(40))).await.unwrap();
    let rel = get(&check, "relL2Error").as_f64().unwrap();
    assert!(rel < 1e-4, "relative L2 error {rel}");
    let direct = matmul_check(&gpu, 8, 8, 8, 1).await.unwrap();
    assert!(direct.passed(), "{direct:?}");
}

#[wasm_bindgen_test]
async fn init_device_narrates_on_the_stream_and_reuses_the_device() {
    let s = streamer();
    let (cb, seen) = recorder();
    let _unsub = s.subscribe(cb, None).map_err(JsValue::from).unwrap();
    JsFuture::from(init_device(&s, None)).await.unwrap();
    JsFuture::from(init_device(&s, None)).await.unwrap(); // a second init must not fail
    let infos: Vec<String> = seen
        .borrow()
        .iter()
        .filter(|e| get(e, "type").as_string().as_deref() == Some("info"))
        .map(|e| get(e, "data").as_string().unwrap())
        .collect();
    assert_eq!(infos[0], "Requesting a WebGPU adapter...");
    assert!(infos[1].starts_with("WebGPU ready: "), "{infos:?}");
    assert_eq!(infos.len(), 4);
}

#[wasm_bindgen_test]
async fn bad_backend_names_are_typed_errors() {
    let err = JsFuture::from(init_device(&streamer(), backend("cuda"))).await.unwrap_err();
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(error_name(&err), "InvalidInputError");
    assert_eq!(get(&err, "code").as_string().as_deref(), Some("INVALID_ARGUMENT"));
    let err = JsFuture::from(check_device(None, Some(0), None, None)).await.unwrap_err();
    assert_eq!(error_name(&err), "InvalidInputError");
}

#[wasm_bindgen_test]
async fn cpu_backend_works_in_the_browser() {
    let info = JsFuture::from(init_device(&streamer(), backend("cpu"))).await.unwrap();
    assert_eq!(get(&info, "kind").as_string().as_deref(), Some("cpu"));
    let check = JsFuture::from(check_device(backend("cpu"), Some(16), Some(64), Some(8))).await.unwrap();
    assert!(get(&check, "relL2Error").as_f64().unwrap() < 1e-4);
}

// ---------------------------------------------------------------- status stream

#[wasm_bindgen_test]
fn events_arrive_in_order_with_typed_details() {
    let s = streamer();
    let (cb, seen) = recorder();
    let _unsub = s.subscribe(cb, None).map_err(JsValue::from).unwrap();
    let key = Some("gemma-3-270m".to_owned());
    s.stream_info("Checking memory for gemma-3-270m...".into(), key.clone());
    s.stream_progress(
        obj(&[("phase", "download".into()), ("loaded", 512.into()), ("total", 2048.into())]),
        key.clone(),
    )
    .map_err(JsValue::from)
    .unwrap();
    s.stream_metrics(obj(&[("usedBytes", 1024.into()), ("budgetBytes", 4096.into())]), None)
        .map_err(JsValue::from)
        .unwrap();
    s.stream_token(obj(&[("text", "Hi".into()), ("tokenId", 42.into()), ("index", 0.into())]), key.clone())
        .map_err(JsValue::from)
        .unwrap();
    let done = obj(&[
        ("text", "Hi".into()),
        ("promptTokens", 3.into()),
        ("generatedTokens", 1.into()),
        ("ttftMs", 12.5.into()),
        ("prefillTokensPerSecond", 100.into()),
        ("decodeTokensPerSecond", 20.into()),
        ("stopReason", "length".into()),
    ]);
    s.stream_done(done, key.clone()).map_err(JsValue::from).unwrap();
    s.stream_info("Model gemma-3-270m loaded successfully.".into(), key);

    let seen = seen.borrow();
    let types: Vec<String> = seen.iter().map(|e| get(e, "type").as_string().unwrap()).collect();
    assert_eq!(types, ["info", "progress", "metrics", "token", "done", "info"]);
    let ids: Vec<f64> = seen.iter().map(|e| get(e, "id").as_f64().unwrap()).collect();
    assert_eq!(ids, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    assert!(seen.iter().all(|e| get(e, "timestamp").as_f64().unwrap() > 1.6e12));
    assert_eq!(get(&seen[0], "modelKey").as_string().as_deref(), Some("gemma-3-270m"));
    assert!(get(&seen[2], "modelKey").is_undefined(), "no modelKey key when none was given");
    let progress = get(&seen[1], "data");
    assert_eq!(get(&progress, "percent").as_f64(), Some(25.0));
    assert_eq!(get(&progress, "phase").as_string().as_deref(), Some("download"));
    assert_eq!(get(&get(&seen[4], "data"), "stopReason").as_string().as_deref(), Some("length"));
    assert_eq!(s.last_event_id(), 6.0);
}

#[wasm_bindgen_test]
fn unsubscribe_stops_delivery_and_is_idempotent() {
    let s = streamer();
    let (cb, seen) = recorder();
    let unsub = s.subscribe(cb, None).map_err(JsValue::from).unwrap();
    s.stream_info("one".into(), None);
    unsub.call0(&JsValue::UNDEFINED).unwrap();
    unsub.call0(&JsValue::UNDEFINED).unwrap();
    s.stream_info("two".into(), None);
    assert_eq!(seen.borrow().len(), 1);
}

#[wasm_bindgen_test]
fn dom_listeners_get_custom_events_and_can_be_removed() {
    let s = streamer();
    let (listener, seen) = recorder();
    s.add_event_listener("progress".into(), listener.clone()).map_err(JsValue::from).unwrap();
    s.add_event_listener("progress".into(), listener.clone()).map_err(JsValue::from).unwrap(); // deduplicated
    s.stream_info("not a progress event".into(), None);
    s.stream_progress(obj(&[("phase", "upload".into()), ("loaded", 1.into())]), None).map_err(JsValue::from).unwrap();
    assert_eq!(seen.borrow().len(), 1);
    let event = seen.borrow()[0].clone();
    assert!(event.is_instance_of::<web_sys::CustomEvent>());
    let detail = event.unchecked_ref::<web_sys::CustomEvent>().detail();
    assert_eq!(get(&detail, "type").as_string().as_deref(), Some("progress"));
    assert!(get(&get(&detail, "data"), "percent").is_undefined(), "no total, no percent");
    s.remove_event_listener("progress".into(), listener).map_err(JsValue::from).unwrap();
    s.stream_progress(obj(&[("phase", "upload".into()), ("loaded", 2.into())]), None).map_err(JsValue::from).unwrap();
    assert_eq!(seen.borrow().len(), 1);

    // `events` is the EventTarget itself.
    let (direct, direct_seen) = recorder();
    s.events().add_event_listener_with_callback("error", &direct).unwrap();
    s.stream_error("boom".into(), None);
    assert_eq!(direct_seen.borrow().len(), 1);

    let err = s.add_event_listener("nope".into(), Function::new_no_args("")).map_err(JsValue::from).unwrap_err();
    assert_eq!(error_name(&err), "InvalidInputError");
}

#[wasm_bindgen_test]
fn a_throwing_listener_breaks_nothing() {
    let s = streamer();
    // The DOM reports listener exceptions through `reportError`; keep the test page
    // quiet and count them.
    let reported = Rc::new(RefCell::new(0));
    let r = reported.clone();
    let report = Closure::<dyn Fn(JsValue)>::new(move |_e: JsValue| *r.borrow_mut() += 1);
    let global = js_sys::global();
    let original = get(&global, "reportError");
    Reflect::set(&global, &"reportError".into(), report.as_ref()).unwrap();

    let thrower = Function::new_with_args("e", "throw new Error('listener failed')");
    let _a = s.subscribe(thrower.clone(), None).map_err(JsValue::from).unwrap();
    let (cb, seen) = recorder();
    let _b = s.subscribe(cb, None).map_err(JsValue::from).unwrap();
    let id1 = s.stream_info("first".into(), None);
    let id2 = s.stream_info("second".into(), None);

    Reflect::set(&global, &"reportError".into(), &original).unwrap();
    assert_eq!((id1, id2), (1.0, 2.0));
    assert_eq!(seen.borrow().len(), 2, "the listener after the thrower still got both events");
    assert_eq!(*reported.borrow(), 2, "each exception was reported, not swallowed");
}

#[wasm_bindgen_test]
fn replay_serves_late_subscribers_from_a_bounded_buffer() {
    let s = SseStreamer::new(Some(obj(&[("bufferSize", 3.into())]).unchecked_into())).map_err(JsValue::from).unwrap();
    for i in 0..5 {
        s.stream_info(format!("m{i}").into(), None);
    }
    let ids = |a: &Array| a.iter().map(|e| get(&e, "id").as_f64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&s.replay(Some(2.0)).map_err(JsValue::from).unwrap()), [4.0, 5.0]);
    assert_eq!(ids(&s.replay(None).map_err(JsValue::from).unwrap()), [3.0, 4.0, 5.0]);
    assert_eq!(ids(&s.since(3.0).map_err(JsValue::from).unwrap()), [4.0, 5.0]);
    let (cb, seen) = recorder();
    let _u = s.subscribe(cb, Some(obj(&[("lastEventId", 4.into())]).unchecked_into())).map_err(JsValue::from).unwrap();
    s.stream_info("m5".into(), None);
    let got: Vec<f64> = seen.borrow().iter().map(|e| get(e, "id").as_f64().unwrap()).collect();
    assert_eq!(got, [5.0, 6.0], "replayed 5, then live 6");
    assert!(s.replay(Some(-1.0)).is_err());
    let err =
        SseStreamer::new(Some(obj(&[("bufferSize", 0.into())]).unchecked_into())).map_err(JsValue::from).err().unwrap();
    assert_eq!(error_name(&err), "InvalidInputError");
}

#[wasm_bindgen_test]
fn stream_error_keeps_name_message_and_stack() {
    let s = streamer();
    let (cb, seen) = recorder();
    let _u = s.subscribe(cb, None).map_err(JsValue::from).unwrap();
    let make = Function::new_no_args(
        "class ModelLoadError extends Error { constructor(m) { super(m); this.name = 'ModelLoadError'; this.code = 'NO_MEMORY'; } }
         return new ModelLoadError('Not enough VRAM (available: 500 MB, required: 2 GB)');",
    );
    let error = make.call0(&JsValue::UNDEFINED).unwrap();
    s.stream_error(error.clone(), Some("gemma-3-270m".into()));
    s.stream_error("plain string".into(), None);
    s.stream_error(obj(&[("weird", 1.into())]), None);
    s.stream_error(JsValue::from_f64(42.0), None);
    s.stream_error(JsValue::UNDEFINED, None);
    s.stream_error(js_sys::Symbol::for_("s").into(), None);

    let seen = seen.borrow();
    let data: Vec<JsValue> = seen.iter().map(|e| get(e, "data")).collect();
    assert_eq!(get(&data[0], "name").as_string().as_deref(), Some("ModelLoadError"));
    assert_eq!(
        get(&data[0], "message").as_string().as_deref(),
        Some("Not enough VRAM (available: 500 MB, required: 2 GB)")
    );
    assert_eq!(get(&data[0], "stack").as_string(), get(&error, "stack").as_string());
    assert!(get(&data[0], "stack").as_string().unwrap().contains("ModelLoadError"));
    assert_eq!(get(&data[0], "code").as_string().as_deref(), Some("NO_MEMORY"));
    assert_eq!(get(&data[1], "message").as_string().as_deref(), Some("plain string"));
    assert_eq!(get(&data[2], "message").as_string().as_deref(), Some("Non-Error value thrown: {\"weird\":1}"));
    assert_eq!(get(&data[3], "message").as_string().as_deref(), Some("Non-Error value thrown: 42"));
    assert!(get(&data[4], "message").as_string().unwrap().starts_with("Non-Error value thrown"));
    assert!(get(&data[5], "message").as_string().unwrap().starts_with("Non-Error value thrown"));
    assert!(data.iter().all(|d| get(d, "name").as_string().is_some()));
}

#[wasm_bindgen_test]
fn bad_event_data_is_a_typed_error_and_changes_nothing() {
    let s = streamer();
    let before = s.last_event_id();
    let cases = [
        obj(&[("phase", "download".into()), ("loaded", "lots".into())]),
        obj(&[("phase", "teleport".into()), ("loaded", 1.into())]),
        obj(&[("phase", "upload".into()), ("loaded", (-5).into())]),
        obj(&[("phase", "upload".into()), ("loaded", 1.5.into())]),
        obj(&[("phase", "upload".into()), ("loaded", f64::NAN.into())]),
        obj(&[("loaded", 1.into())]),
        JsValue::NULL,
        JsValue::from_str("50%"),
    ];
    for bad in cases {
        let err = s.stream_progress(bad, None).map_err(JsValue::from).unwrap_err();
        assert!(err.is_instance_of::<js_sys::Error>());
        assert_eq!(error_name(&err), "InvalidInputError");
        assert_eq!(get(&err, "code").as_string().as_deref(), Some("INVALID_EVENT_DATA"));
        assert!(get(&err, "message").as_string().unwrap().contains("Invalid progress"));
    }
    // A cyclic object is fine as long as the fields we read are fine.
    let cyclic = obj(&[("usedBytes", 1.into())]);
    Reflect::set(&cyclic, &"self".into(), &cyclic).unwrap();
    s.stream_metrics(cyclic, None).map_err(JsValue::from).unwrap();
    // A BigInt byte count is a fine byte count; a string is not.
    let bigint = obj(&[("usedBytes", js_sys::BigInt::from(5u32).into())]);
    s.stream_metrics(bigint, None).map_err(JsValue::from).unwrap();
    assert!(s.stream_metrics(obj(&[("usedBytes", "5 MB".into())]), None).is_err());
    assert!(s.stream_token(JsValue::from_f64(1.0), None).is_err());
    // Non-string info is rendered, not rejected.
    s.stream_info(JsValue::from_f64(7.0), None);
    assert_eq!(s.last_event_id(), before + 3.0, "only the three valid events were emitted");
}

/// Reads everything currently queued in an SSE `ReadableStream`.
async fn drain(
    reader: &web_sys::ReadableStreamDefaultReader,
    parser: &mut Parser,
) -> Vec<hearth::status::sse::ParsedEvent> {
    let mut out = Vec::new();
    loop {
        // A read on an empty queue would wait forever; race it against a microtask.
        let read = reader.read();
        let timeout = js_sys::Promise::new(&mut |resolve, _| {
            let _ = web_sys::window().unwrap().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 50);
        });
        let winner = JsFuture::from(js_sys::Promise::race(&Array::of2(&read, &timeout))).await.unwrap();
        if winner.is_undefined() {
            // Timed out: the pending read would swallow the next chunk, so cancel it.
            return out;
        }
        if get(&winner, "done").as_bool() == Some(true) {
            return out;
        }
        let chunk: Uint8Array = get(&winner, "value").unchecked_into();
        out.extend(parser.feed(&chunk.to_vec()));
    }
}

#[wasm_bindgen_test]
async fn event_stream_yields_spec_conformant_frames() {
    let s = streamer();
    s.stream_info("before the stream".into(), None);
    s.stream_info("also before".into(), None);
    let stream =
        s.event_stream(Some(obj(&[("lastEventId", 1.into())]).unchecked_into())).map_err(JsValue::from).unwrap();
    s.stream_info("line one\nline two\r\nline three".into(), Some("k".into()));
    s.stream_error("bad".into(), None);
    let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
    let mut parser = Parser::new();
    let events = drain(&reader, &mut parser).await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].last_event_id, "2", "replay after Last-Event-ID 1");
    assert_eq!(events[1].event, "info");
    assert_eq!(events[1].last_event_id, "3");
    let detail: hearth::status::StatusEvent = serde_json::from_str(&events[1].data).unwrap();
    assert_eq!(detail.payload, hearth::status::Payload::Info("line one\nline two\r\nline three".into()));
    assert_eq!(events[2].event, "error");

    // Multi-line data through the JS-facing encoder, parsed back.
    let frame = SseStreamer::encode_frame(obj(&[
        ("event", "info".into()),
        ("id", "9".into()),
        ("data", "a\nb\r\nc\rd".into()),
    ]))
    .map_err(JsValue::from)
    .unwrap();
    assert_eq!(frame, "event: info\nid: 9\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    let parsed = Parser::new().feed(frame.as_bytes());
    assert_eq!(parsed[0].data, "a\nb\nc\nd");
    let err = SseStreamer::encode_frame(obj(&[("id", "1\n2".into()), ("data", "x".into())]))
        .map_err(JsValue::from)
        .unwrap_err();
    assert_eq!(error_name(&err), "InvalidInputError");

    // Cancelling the stream unregisters it: later events are not queued.
    JsFuture::from(reader.cancel()).await.unwrap();
    s.stream_info("after cancel".into(), None);
}

// ---------------------------------------------------------------- GGUF

#[wasm_bindgen_test]
fn every_corrupt_gguf_is_rejected_with_a_typed_error_in_the_browser() {
    let cases = hearth::gguf::corpus::corrupt_cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut through_js = 0;
    for case in &cases {
        // The core parser, compiled to wasm32, gives the same verdicts as natively.
        hearth::gguf::corpus::check(case).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        // And through the JS entry point: a ModelFormatError naming the problem.
        if case.file_len.is_none_or(|n| n == case.bytes.len() as u64) {
            let bytes = Uint8Array::from(&case.bytes[..]);
            let err = hearth::web::GgufFile::from_bytes(bytes.unchecked_into())
                .map(|_| ())
                .map_err(JsValue::from)
                .expect_err(case.name);
            assert!(err.is_instance_of::<js_sys::Error>(), "{}", case.name);
            assert_eq!(error_name(&err), "ModelFormatError", "{}", case.name);
            let code = get(&err, "code").as_string().unwrap();
            assert!(code.starts_with("GGUF_"), "{}: {code}", case.name);
            through_js += 1;
        }
    }
    assert!(through_js >= 20, "{through_js} cases went through GgufFile.fromBytes");
    // The instance is still healthy after all those rejections.
    let mut tensors = 0;
    for (name, bytes) in hearth::gguf::corpus::valid_samples() {
        let file = hearth::web::GgufFile::from_bytes(Uint8Array::from(&bytes[..]).unchecked_into())
            .map_err(JsValue::from)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        tensors += file.tensor_count();
    }
    assert!(tensors > 0);
}

// ---------------------------------------------------------------- tokenizer

#[wasm_bindgen_test]
fn streaming_detokenisation_never_emits_half_a_character_in_wasm() {
    use hearth::tokenizer::{StreamDecoder, Tokenizer, VocabSpec};
    // A SentencePiece vocabulary with byte fallback: every non-ASCII character
    // becomes several byte tokens, the case that tempts a decoder to emit halves.
    let mut tokens = vec!["<unk>".to_owned(), "<s>".to_owned(), "</s>".to_owned()];
    let mut types = vec![2, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    for word in ["▁", "▁h", "▁he", "l", "o", "▁hello"] {
        tokens.push(word.to_owned());
        types.push(1);
    }
    let n = tokens.len();
    let spec = VocabSpec {
        model: "llama".into(),
        scores: Some((0..n).map(|i| i as f32).collect()),
        token_types: Some(types),
        tokens,
        unk: Some(0),
        bos: Some(1),
        eos: Some(2),
        add_bos: Some(true),
        ..VocabSpec::default()
    };
    let tok = Tokenizer::from_spec(spec).unwrap();
    let text = "hello héllo 🦀 日本";
    let ids = tok.encode(text, false, false);
    assert!(ids.len() > 12, "multi-byte characters went through byte tokens: {ids:?}");
    let mut stream = StreamDecoder::new();
    let mut out = String::new();
    for id in &ids {
        let piece = stream.push(&tok, *id);
        // `String` cannot hold half a character; what matters is that nothing was
        // replaced by U+FFFD along the way.
        assert!(!piece.contains('\u{FFFD}'), "{piece:?}");
        out.push_str(&piece);
    }
    out.push_str(&stream.finish());
    // Pieces keep SentencePiece's leading space (mid-answer it matters);
    // `decode` of a whole text drops it at the start, as llama.cpp does.
    assert_eq!(out.trim_start(), tok.decode(&ids));
    assert_eq!(tok.decode(&ids), text);
    assert_eq!(tok.encode(text, true, false)[0], 1, "BOS added when asked");
}

// ---------------------------------------------------------------- CPU kernels

/// The CPU engine's quantized kernels as they run here (simd128, set in `.cargo/config.toml`)
/// against the scalar reference kernels, for every format with a quantized kernel: equal bit for
/// bit (the integer dots are exact and the float operations happen in the same order).
#[wasm_bindgen_test]
fn cpu_simd128_kernels_equal_the_scalar_reference() {
    use hearth::gguf::GgmlType;
    use hearth::infer::cpu::quant::{QuantActs, kernel, random_blocks};
    const { assert!(cfg!(target_feature = "simd128"), "built without +simd128 (.cargo/config.toml sets it)") };
    let mut rng = hearth::rng::Rng::new(12);
    let mut formats = 0;
    for ty in GgmlType::all() {
        let Some(k) = kernel(ty) else { continue };
        formats += 1;
        let (rows, cols, n) = (4, 512, 3);
        let w = random_blocks(&mut rng, ty, rows, cols);
        let x = rng.signed_f32s(n * cols);
        let mut acts = QuantActs::default();
        acts.quantize(&x, n, cols);
        let row_bytes = w.len() / rows;
        for r in 0..rows {
            let wr = &w[r * row_bytes..(r + 1) * row_bytes];
            let mut out = vec![0f32; n];
            (k.dot)(wr, &acts, &mut out);
            for (i, &got) in out.iter().enumerate() {
                let want = (k.reference)(wr, acts.row(i));
                assert!(want != 0.0, "{ty}: a zero product tests nothing");
                assert_eq!(got.to_bits(), want.to_bits(), "{ty} row {r} token {i}: simd128 {got}, reference {want}");
            }
        }
    }
    assert_eq!(formats, 8, "Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K");
}
