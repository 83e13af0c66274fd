#![cfg(not(target_arch = "wasm32"))] // native wgpu (Mesa lavapipe here); the browser runs the same handler
//! Uncaptured WebGPU errors on a real device: the handler [`Backend::webgpu`] installs after
//! the runtime's setup replaces cubecl's (which panics), records the error in [`Backend::faults`], and
//! a generation that the error hits fails with a typed error while the device, the model and
//! later generations go on.
//!
//! The error is provoked for real: a buffer whose usages WebGPU forbids (`MAP_READ` with
//! `STORAGE`), created outside every error scope. No adapter fails the test unless
//! `HEARTH_SKIP_GPU=1`; no fixture fails the model half unless `HEARTH_SKIP_REAL_MODELS=1`.

use std::path::PathBuf;
use std::rc::Rc;

use futures::executor::block_on;
use hearth::backend::wgpu;
use hearth::backend::{Backend, GpuFaultKind, matmul_check};
use hearth::error::{Coded, ErrorCode};
use hearth::infer::read_header_from;
use hearth::infer::session::{GenerateOptions, Hooks, LoadHooks, LoadPlan, LoadedModel, Prompt, SessionError};
use hearth::status::{Payload, Recorder, StatusStream};

/// The device through the same path the browser takes, or `None` without an adapter and with
/// `HEARTH_SKIP_GPU=1`.
fn backend() -> Option<Backend> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, in this single test.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    // Through the page's device slot, as the browser's `initDevice` does: its listeners hear the
    // faults that come while no work runs.
    match block_on(hearth::device::page_webgpu(Backend::webgpu)) {
        Ok(b) => Some(Backend::clone(&b)),
        Err(e) if std::env::var("HEARTH_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: no wgpu adapter ({e}); HEARTH_SKIP_GPU=1");
            None
        }
        Err(e) => panic!("no wgpu adapter: {e} (set HEARTH_SKIP_GPU=1 to skip)"),
    }
}

fn fixture() -> Option<Vec<u8>> {
    if std::env::var("HEARTH_SKIP_REAL_MODELS").as_deref() == Ok("1") {
        eprintln!("SKIPPED the model half: HEARTH_SKIP_REAL_MODELS=1");
        return None;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("HEARTH_FIXTURES_DIR").map_or_else(|| root.join(".cache/fixtures"), PathBuf::from);
    let path = dir.join("llama-f32.gguf");
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (python3 tools/make_fixtures.py)", path.display())))
}

/// A validation error no error scope catches: `MAP_READ` goes only with `COPY_DST`.
fn provoke(device: &wgpu::Device) {
    let _invalid = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("invalid on purpose"),
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
}

fn greedy(max_tokens: u32) -> GenerateOptions {
    GenerateOptions { max_tokens: Some(max_tokens), ignore_eos: true, ..GenerateOptions::default() }
}

/// One test: burn registers one runtime per device kind and process.
#[test]
fn an_uncaptured_error_is_recorded_and_fails_only_the_generation_it_hits() {
    let Some(backend) = backend() else { return };
    let device = backend.wgpu.clone().expect("a WebGPU backend holds its wgpu device");

    // Recorded, not a panic, and told to the page's listeners (no work runs); the device still
    // computes.
    let told = Rc::new(std::cell::RefCell::new(Vec::new()));
    let sink = told.clone();
    hearth::device::on_page_device_fault(Rc::new(move |generation, fault: &hearth::backend::GpuFault| {
        sink.borrow_mut().push((generation, fault.kind));
    }));
    let mark = backend.faults.mark();
    provoke(&device);
    let fault = backend.faults.since(mark).expect("the uncaptured error reached our handler");
    assert_eq!(*told.borrow(), [(0, GpuFaultKind::Validation)], "a fault outside any work is told");
    assert_eq!(fault.kind, GpuFaultKind::Validation);
    assert!(fault.message.contains("invalid on purpose"), "the device's message names the buffer: {fault:?}");
    let check = block_on(matmul_check(&backend, 16, 32, 8, 3)).unwrap();
    assert!(check.passed(), "{check:?}");

    // A model on the device: the error during its generation fails that generation.
    let Some(bytes) = fixture() else { return };
    let header = block_on(read_header_from(&bytes[..])).unwrap();
    let plan = LoadPlan::new(&header, Some("tiny".into()), Some(32)).unwrap();
    let recorder = Recorder::new();
    let status = Rc::new(StatusStream::new(Box::new(recorder.clone()), 256, || 0.0));
    let hooks = LoadHooks { on_progress: &|_| {}, cancelled: &|| false, announce: false };
    let model = block_on(LoadedModel::load(plan, &backend, &header, &bytes[..], hooks, Some(status)))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let clock = || 0.0;
    let mut on_token = |t: &hearth::infer::TokenEvent<'_>| {
        if t.index == 1 {
            provoke(&device);
        }
        true
    };
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 7 };
    let err = block_on(model.generate(Prompt::Text("Hello there".into()), &greedy(8), hooks)).unwrap_err();
    let SessionError::DeviceFault { key, fault } = &err else { panic!("{err:?}") };
    assert_eq!((key.as_str(), fault.kind), ("tiny", GpuFaultKind::Validation));
    assert_eq!(err.code(), ErrorCode::GpuError);
    let events = recorder.events();
    assert!(
        events.iter().any(|e| matches!(&e.payload, Payload::Error(i) if i.code.as_deref() == Some("GPU_ERROR"))),
        "an error event on the status stream"
    );
    let tokens = events.iter().filter(|e| matches!(e.payload, Payload::Token(_))).count();
    assert_eq!(tokens, 2, "stopped at the token after the error");
    assert_eq!(told.borrow().len(), 1, "the generation's fault is the generation's to report");

    // The model and the device go on.
    let mut on_token = |_: &hearth::infer::TokenEvent<'_>| true;
    let hooks = Hooks { now_ms: &clock, cancelled: &|| false, on_token: &mut on_token, seed: 7 };
    let out = block_on(model.generate(Prompt::Text("Hello there".into()), &greedy(4), hooks)).unwrap();
    assert_eq!(out.generated_tokens, 4);
}
