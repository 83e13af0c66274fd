//! Every ModelManager scenario the page tests cover, natively, over the fake engine
//! ([`crate::manager::testing`]): loads that complete when the test says so, fake byte counts, a
//! status recorder.

use std::rc::Rc;

use super::*;
use crate::error::{ErrorClass, ErrorCode};
use crate::manager::CatalogEntry;
use crate::manager::testing::{FakeError, Flag, Harness, entry, roomy};
use crate::memory::MIB;

// ---------------------------------------------------------------------------------------------
// Switching

#[test]
fn switch_tells_the_seed_sequence_and_registers_the_model() {
    let mut h = roomy();
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(h.infos_since(mark), ["Checking memory for a...", "Loading model a...", "Model a loaded successfully."]);
    assert!(h.recorder.events()[mark..].iter().all(|e| e.model_key.as_deref() == Some("a")));
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert!(h.lifecycle.is_ready());
    assert_eq!(h.lifecycle.loading(), None);
    assert_eq!(h.engine().memory.registered_bytes(), 100 * MIB);
    assert_eq!(h.engine().metrics_reports.get(), 1, "one metrics report, after the register");
    let resident = h.lifecycle.resident();
    assert_eq!(resident.len(), 1);
    assert!(resident[0].current);
    assert_eq!(resident[0].account.bytes, 100 * MIB);
}

#[test]
fn init_tells_the_sequence_with_the_register_metrics_before_success_then_ready() {
    let mut h = roomy();
    let f = h.lifecycle.init("a", None);
    assert_eq!(h.run(f).unwrap().key, "a");
    assert_eq!(
        h.timeline_since(0),
        [
            "Checking memory for a...",
            "Loading model a...",
            "metrics",
            "Model a loaded successfully.",
            "Model a initialized and ready."
        ]
    );
    assert!(h.recorder.events().iter().all(|e| e.model_key.as_deref() == Some("a")), "every event names the model");
    let rows = h.lifecycle.loaded_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].key.as_str(), rows[0].bytes, rows[0].current), ("a", 100 * MIB, true));
    assert_eq!(rows[0].backend, "fake");
    // The loaded model again: one info, nothing loaded.
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(h.timeline_since(mark), ["Model a is already loaded."]);
    // A failed init tells no "ready".
    let f = h.lifecycle.init("nope", None);
    assert!(h.run(f).is_err());
    assert!(!h.recorder.infos().iter().any(|m| m == "Model nope initialized and ready."));
}

#[test]
fn the_simulated_low_vram_budget_refuses_with_suggestions() {
    let mut h = roomy();
    h.engine().memory.clear_budget_override();
    h.engine().memory.set_simulation_low_vram(true);
    let e = h.switch("big").unwrap_err();
    let ManagerError::DoesNotFit { available_bytes, suggestions, .. } = &e else { panic!("{e:?}") };
    assert_eq!(*available_bytes, 256 * MIB);
    assert_eq!(suggestions[0].key, "c");
    assert!(suggestions.iter().all(|s| s.required_bytes <= 256 * MIB));
}

#[test]
fn an_entry_the_app_supplies_the_file_for_needs_no_url_and_loads() {
    let mut h = roomy();
    let supplied = CatalogEntry { url: String::new(), ..entry("tiny", 10) };
    assert!(h.lifecycle.register(supplied.clone(), true).is_err(), "a URL is needed unless a file is supplied");
    h.lifecycle.register(supplied, false).unwrap();
    assert_eq!(h.lifecycle.catalog().lookup("tiny").unwrap().url, "");
    assert_eq!(h.switch("tiny").unwrap(), "tiny");
}

#[test]
fn switching_to_the_loaded_model_only_touches_it() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(h.timeline_since(mark), ["Model a is already loaded."]);
    assert_eq!(*h.engine().loads.borrow(), ["a", "b"], "nothing loaded again");
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    // Touched: a is now the most recently used.
    assert_eq!(h.loaded_keys(), ["b", "a"]);
}

#[test]
fn unknown_key_is_a_catalog_error_that_tells_nothing() {
    let mut h = roomy();
    let mark = h.mark();
    let e = h.switch("nope").unwrap_err();
    assert!(matches!(&e, ManagerError::Catalog(crate::manager::CatalogError::Unknown { key, .. }) if key == "nope"));
    assert_eq!(e.code(), ErrorCode::UnknownModel);
    assert_eq!(e.class(), ErrorClass::InvalidInput);
    assert!(h.recorder.events()[mark..].is_empty());
    assert!(h.loaded_keys().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Eviction, refusal, fallback

#[test]
fn eviction_unloads_the_least_recently_used_model_and_only_that() {
    // a + c fit side by side, a + b + c do not.
    let mut h = Harness::new(260, Settings::default());
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.switch("a").unwrap(); // b is now the least recently used
    let mark = h.mark();
    h.switch("c").unwrap();
    assert_eq!(
        h.infos_since(mark),
        [
            "Checking memory for c...",
            "Unloading b to make room for c.",
            "Model b unloaded.",
            "Loading model c...",
            "Model c loaded successfully."
        ]
    );
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
    assert_eq!(h.engine().uploaded.get(), 250 * MIB, "b's bytes were freed");
}

#[test]
fn eviction_spares_pinned_and_generating_models() {
    let mut h = Harness::new(260, Settings::default());
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.engine().memory.pin("a");
    h.lifecycle.model("b").unwrap().0.generating.set(true);
    let mark = h.mark();
    let e = h.switch("c").unwrap_err();
    assert!(matches!(e, ManagerError::DoesNotFit { .. }), "{e:?}");
    assert!(!h.infos_since(mark).iter().any(|m| m.starts_with("Unloading")));
    assert_eq!(h.loaded_keys().len(), 2);
    // Once b is idle, it is the one to go (a stays pinned).
    h.lifecycle.model("b").unwrap().0.generating.set(false);
    h.switch("c").unwrap();
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
}

#[test]
fn refusal_is_a_does_not_fit_error_with_figures_and_suggestions() {
    let mut h = Harness::new(256, Settings::default());
    let mark = h.mark();
    let e = h.switch("big").unwrap_err();
    let ManagerError::DoesNotFit { key, reason, required_bytes, available_bytes, suggestions, message } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(key, "big");
    assert_eq!(*required_bytes, 400 * MIB);
    assert_eq!(*available_bytes, 256 * MIB);
    assert_eq!(reason, "Not enough VRAM (available: 256 MB, required: 400 MB)");
    // Models that fit in 256 MB, largest first.
    let keys: Vec<&str> = suggestions.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["c", "a", "b", "tiny"]);
    assert_eq!(
        *message,
        "Cannot load big: Not enough VRAM (available: 256 MB, required: 400 MB). Models that fit: c, a, b, tiny."
    );
    assert_eq!((e.class(), e.code()), (ErrorClass::ModelLoad, ErrorCode::NotEnoughMemory));
    assert_eq!(
        h.timeline_since(mark),
        ["Checking memory for big...".to_owned(), format!("error ModelLoadError: {message}")]
    );
    assert!(h.engine().loads.borrow().is_empty());
    assert_eq!(h.lifecycle.current(), None);
    // canLoadModel says the same, exactly (the header was read).
    let fit = h.lifecycle.fit("big").unwrap();
    assert!(!fit.can_load.can && fit.exact);
    assert_eq!(fit.suggestions, *suggestions);
    // What JS reads beside the message.
    let fields: Vec<&str> = e.details().into_iter().map(|(k, _)| k).collect();
    assert_eq!(fields, ["modelKey", "reason", "requiredBytes", "availableBytes"]);
    assert_eq!(e.details()[2].1, crate::error::Detail::Number((400 * MIB) as f64));
    assert_eq!(e.suggestions().map(<[_]>::len), Some(4));
    assert!(e.into_engine_error().is_none());
}

#[test]
fn refusal_without_eviction_when_eviction_is_off() {
    let mut h = Harness::new(260, Settings { evict: false, ..Settings::default() });
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    let e = h.switch("c").unwrap_err();
    assert!(matches!(e, ManagerError::DoesNotFit { .. }), "{e:?}");
    assert_eq!(h.loaded_keys(), ["a", "b"]);
}

#[test]
fn auto_fallback_loads_the_best_suggestion_and_says_so() {
    let mut h = Harness::new(256, Settings { auto_fallback: true, ..Settings::default() });
    let mark = h.mark();
    assert_eq!(h.switch("big").unwrap(), "c");
    assert_eq!(
        h.timeline_since(mark).into_iter().filter(|m| m != "metrics").collect::<Vec<_>>(),
        [
            "Checking memory for big...",
            "error ModelLoadError: Cannot load big: Not enough VRAM (available: 256 MB, required: 400 MB). Models that fit: c, a, b, tiny. Loading c instead.",
            "Falling back to c (fits: 150 MB).",
            "Checking memory for c...",
            "Loading model c...",
            "Model c loaded successfully.",
        ]
    );
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
}

#[test]
fn auto_fallback_after_a_failed_load_but_not_after_invalid_input() {
    let mut h = Harness::new(1024, Settings { auto_fallback: true, ..Settings::default() });
    h.engine().load_errors.borrow_mut().insert("big".into(), FakeError::download("HTTP 404"));
    let mark = h.mark();
    assert_eq!(h.switch("big").unwrap(), "c");
    let infos = h.infos_since(mark);
    assert!(infos.contains(&"Falling back to c.".to_owned()), "{infos:?}");
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));

    h.engine()
        .open_errors
        .borrow_mut()
        .insert("tiny".into(), FakeError { code: ErrorCode::NoModelSource, message: "no source".into() });
    let e = h.switch("tiny").unwrap_err();
    assert!(
        matches!(&e, ManagerError::LoadFailed { failure: LoadFailure::Engine(f), .. } if f.code == ErrorCode::NoModelSource)
    );
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"), "no fallback for invalid input");
}

// ---------------------------------------------------------------------------------------------
// The operation chain

#[test]
fn concurrent_same_key_calls_share_one_load() {
    let mut h = roomy();
    let gate = h.hold("a");
    let one = h.spawn(h.lifecycle.switch("a", None));
    let two = h.spawn(h.lifecycle.switch("a", None));
    h.pool.run_until_stalled();
    assert_eq!(h.lifecycle.loading().as_deref(), Some("a"));
    assert!(!h.lifecycle.is_ready());
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let (one, two) = (one.borrow_mut().take().unwrap().unwrap(), two.borrow_mut().take().unwrap().unwrap());
    assert_eq!((one.key.as_str(), two.key.as_str()), ("a", "a"));
    assert!(Rc::ptr_eq(&one.model.0, &two.model.0), "both callers got the one model");
    assert_eq!(*h.engine().loads.borrow(), ["a"]);
    assert_eq!(h.recorder.infos().iter().filter(|m| *m == "Loading model a...").count(), 1);
}

#[test]
fn different_keys_run_in_call_order_and_a_failure_leaves_the_state_consistent() {
    let mut h = roomy();
    h.engine().open_errors.borrow_mut().insert("b".into(), FakeError::download("HTTP 404 for /models/b.gguf"));
    let gate = h.hold("a");
    let calls = [
        h.spawn(h.lifecycle.switch("a", None)),
        h.spawn(h.lifecycle.switch("a", None)),
        h.spawn(h.lifecycle.switch("b", None)),
        h.spawn(h.lifecycle.switch("c", None)),
    ];
    h.pool.run_until_stalled();
    // Nothing after a starts before a is done.
    assert_eq!(h.recorder.infos(), ["Checking memory for a...", "Loading model a..."]);
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let results: Vec<_> = calls.iter().map(|s| s.borrow_mut().take().unwrap()).collect();
    let key = |n: usize| results[n].as_ref().map(|s| s.key.as_str()).unwrap();
    assert_eq!((key(0), key(1), key(3)), ("a", "a", "c"));
    let e = results[2].as_ref().unwrap_err();
    let fields: Vec<&str> = e.details().into_iter().map(|(k, _)| k).collect();
    assert_eq!(fields, ["modelKey"]);
    assert_eq!(e.clone().into_engine_error().map(|f| f.code), Some(ErrorCode::HttpStatus), "the cause keeps its code");
    let ManagerError::LoadFailed { key, failure: LoadFailure::Engine(f), suggestions } = e else { panic!("{e:?}") };
    assert_eq!(key, "b");
    assert_eq!(f.code.class().js_name(), "DownloadError");
    assert!(!suggestions.is_empty());
    let infos = h.recorder.infos();
    let at = |m: &str| infos.iter().position(|i| i == m).unwrap_or_else(|| panic!("{m}: {infos:?}"));
    assert!(at("Model a loaded successfully.") < at("Checking memory for b..."));
    assert!(at("Checking memory for b...") < at("Checking memory for c..."));
    assert_eq!(
        h.errors_since(0),
        [(
            "DownloadError".to_owned(),
            "Failed to load b: HTTP 404 for /models/b.gguf".to_owned(),
            Some("b".to_owned())
        )]
    );
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "c"]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
    assert_eq!(h.engine().memory.registered_bytes(), 250 * MIB);
}

#[test]
fn a_failed_load_registers_nothing_and_keeps_the_previous_model_current() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.engine().load_errors.borrow_mut().insert("b".into(), FakeError::download("connection reset"));
    let e = h.switch("b").unwrap_err();
    assert_eq!(e.error_info().message, "Failed to load b: connection reset");
    assert_eq!(e.message(), "connection reset", "the error keeps the engine's own message");
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!(h.engine().memory.registered_bytes(), 100 * MIB);
    assert_eq!(h.lifecycle.loading(), None);
}

// ---------------------------------------------------------------------------------------------
// Cancellation

#[test]
fn cancellation_mid_load_frees_the_upload_and_keeps_the_previous_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    let baseline = (h.engine().uploaded.get(), h.engine().memory.registered_bytes());
    let flag = Flag::default();
    let gate = h.hold("b");
    let mark = h.mark();
    let out = h.spawn(h.lifecycle.switch("b", Some(flag.clone())));
    h.pool.run_until_stalled();
    assert!(h.engine().uploaded.get() > baseline.0, "half of b is on the device");
    flag.cancel();
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    let e = out.borrow_mut().take().unwrap().unwrap_err();
    assert!(e.is_cancelled(), "{e:?}");
    let message = "Loading b was cancelled while loading; a is still the current model.";
    assert_eq!(e.message(), message);
    assert_eq!((e.class(), e.code()), (ErrorClass::Cancelled, ErrorCode::Aborted));
    assert_eq!(h.errors_since(mark), [("CancelledError".to_owned(), message.to_owned(), Some("b".to_owned()))]);
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!((h.engine().uploaded.get(), h.engine().memory.registered_bytes()), baseline, "memory back at baseline");
}

#[test]
fn cancellation_before_the_load_starts_tells_it_and_loads_nothing() {
    let mut h = roomy();
    let flag = Flag::default();
    flag.cancel();
    let f = h.lifecycle.switch("a", Some(flag));
    let e = h.run(f).unwrap_err();
    assert_eq!(e.message(), "Loading a was cancelled before it started.");
    assert!(h.engine().loads.borrow().is_empty());
    assert_eq!(h.errors_since(0).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Preload, unload, tasks

#[test]
fn preload_waits_for_running_tasks_and_does_not_change_the_current_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.lifecycle.task_started();
    h.lifecycle.task_started();
    assert_eq!(h.lifecycle.tasks_running(), 2);
    let preload = h.spawn(h.lifecycle.preload("b", None));
    h.pool.run_until_stalled();
    assert!(preload.borrow().is_none());
    assert_eq!(*h.engine().loads.borrow(), ["a"], "the preload waits");
    // A task's own switch is not stuck behind the waiting preload.
    assert_eq!(h.switch("a").unwrap(), "a");
    h.lifecycle.task_finished();
    h.pool.run_until_stalled();
    assert!(preload.borrow().is_none(), "one task still runs");
    h.lifecycle.task_finished();
    h.pool.run_until_stalled();
    assert_eq!(preload.borrow_mut().take().unwrap().unwrap().key, "b");
    assert_eq!(h.lifecycle.tasks_running(), 0);
    assert_eq!(h.lifecycle.current().as_deref(), Some("a"));
    assert!(h.lifecycle.is_loaded("b"));
}

#[test]
fn task_accounting_never_goes_below_zero() {
    let h = roomy();
    h.lifecycle.task_finished();
    assert_eq!(h.lifecycle.tasks_running(), 0);
    h.lifecycle.task_started();
    assert_eq!(h.lifecycle.tasks_running(), 1);
    h.lifecycle.task_finished();
    assert_eq!(h.lifecycle.tasks_running(), 0);
}

#[test]
fn unload_returns_the_memory_and_refuses_a_generating_model() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.switch("b").unwrap();
    h.lifecycle.model("a").unwrap().0.generating.set(true);
    let f = h.lifecycle.unload("a");
    let e = h.run(f).unwrap_err();
    assert!(matches!(&e, ManagerError::Busy { key, with: BusyWith::Generating } if key == "a"));
    assert_eq!(e.code(), ErrorCode::ModelBusy);
    h.lifecycle.model("a").unwrap().0.generating.set(false);
    let mark = h.mark();
    let f = h.lifecycle.unload("b");
    assert!(h.run(f).unwrap());
    assert_eq!(h.timeline_since(mark), ["metrics", "Model b unloaded."]);
    assert_eq!(h.lifecycle.current(), None, "b was current");
    assert_eq!(h.loaded_keys(), ["a"]);
    assert_eq!(h.engine().uploaded.get(), 100 * MIB);
    let f = h.lifecycle.unload("b");
    assert!(!h.run(f).unwrap(), "not resident any more");
}

#[test]
fn a_model_disposed_behind_the_lifecycles_back_is_forgotten() {
    let mut h = roomy();
    h.switch("a").unwrap();
    h.lifecycle.model("a").unwrap().dispose();
    assert!(!h.lifecycle.is_loaded("a"));
    assert!(h.loaded_keys().is_empty());
    assert_eq!(h.engine().memory.registered_bytes(), 0);
    h.switch("a").unwrap();
    assert_eq!(*h.engine().loads.borrow(), ["a", "a"]);
}

#[test]
fn registering_an_entry_is_refused_while_its_model_loads() {
    let mut h = roomy();
    let gate = h.hold("a");
    let _load = h.spawn(h.lifecycle.switch("a", None));
    h.pool.run_until_stalled();
    let e = h.lifecycle.register(entry("a", 50), true).unwrap_err();
    assert!(matches!(e, ManagerError::Busy { with: BusyWith::Loading, .. }));
    assert!(e.message().starts_with("registerModel: a is being loaded"));
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    h.lifecycle.register(entry("a", 50), true).unwrap();
    let bad = CatalogEntry { key: "x y".into(), ..entry("x", 1) };
    let e = h.lifecycle.register(bad, true).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidCatalogEntry);
}

#[test]
fn check_reads_the_header_so_the_figures_become_exact() {
    let mut h = roomy();
    let before = h.lifecycle.fit("a").unwrap();
    assert!(!before.exact && before.can_load.can);
    let f = {
        let l = h.lifecycle.clone();
        async move { l.check("a", None).await }
    };
    let after = h.run(f).unwrap();
    assert!(after.exact);
    assert_eq!(after.can_load.required_bytes, 100 * MIB);
    let rows = h.lifecycle.catalog_rows();
    let row = rows.iter().find(|r| r.entry.key == "a").unwrap();
    assert!(row.exact && !row.loaded);
}

// ---------------------------------------------------------------------------------------------
// Device loss

#[test]
fn device_loss_empties_everything_and_the_next_switch_recovers() {
    let mut h = roomy();
    h.switch("a").unwrap();
    let f = h.lifecycle.preload("b", None);
    h.run(f).unwrap();
    let mark = h.mark();
    h.lifecycle.device_lost(0, "Destroyed: device destroyed");
    h.lifecycle.device_lost(0, "Destroyed: again"); // a second report is ignored
    assert_eq!(h.errors_since(mark), [(
        "DeviceLostError".to_owned(),
        "The GPU device was lost (Destroyed: device destroyed). Every model on it was unloaded: a, b. The next load re-creates the device.".to_owned(),
        None
    )]);
    assert!(h.lifecycle.is_lost());
    assert_eq!(h.lifecycle.current(), None);
    assert!(h.loaded_keys().is_empty());
    assert!(!h.lifecycle.is_ready());
    assert_eq!(h.engine().memory.registered_bytes(), 0);
    assert_eq!(h.engine().uploaded.get(), 0);
    let mark = h.mark();
    assert_eq!(h.switch("a").unwrap(), "a");
    assert_eq!(
        h.infos_since(mark),
        [
            "Re-created the WebGPU device after the loss (generation 1).",
            "Checking memory for a...",
            "Loading model a...",
            "Model a loaded successfully."
        ]
    );
    assert!(!h.lifecycle.is_lost());
    // A late report about the old device changes nothing.
    h.lifecycle.device_lost(0, "late");
    assert!(h.lifecycle.is_loaded("a"));
}

#[test]
fn device_loss_during_a_load_fails_it_without_fallback() {
    let mut h = Harness::new(1024, Settings { auto_fallback: true, ..Settings::default() });
    let lifecycle = Rc::downgrade(&h.lifecycle);
    *h.engine().mid_load.borrow_mut() = Some(Box::new(move || {
        if let Some(l) = lifecycle.upgrade() {
            l.device_lost(0, "Destroyed");
        }
    }));
    let e = h.switch("a").unwrap_err();
    assert!(matches!(e, ManagerError::LoadFailed { failure: LoadFailure::DeviceLost, .. }), "{e:?}");
    assert_eq!((e.class(), e.code()), (ErrorClass::DeviceLost, ErrorCode::DeviceLost));
    assert_eq!(e.message(), "The GPU device was lost while a was loading; load it again to use a new device.");
    assert!(h.loaded_keys().is_empty());
    assert_eq!(h.engine().uploaded.get(), 0, "the half-loaded model was disposed");
    *h.engine().mid_load.borrow_mut() = None;
    assert_eq!(h.switch("a").unwrap(), "a", "the next switch recovers");
}

#[test]
fn device_loss_with_nothing_loaded_says_so() {
    let h = roomy();
    h.lifecycle.device_lost(0, "Destroyed");
    let errors = h.errors_since(0);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].1.contains("No model was loaded."), "{errors:?}");
}

#[test]
fn a_lifecycle_following_the_page_device_hears_its_loss() {
    use crate::device::{page_generation, page_webgpu};
    let h = roomy();
    h.lifecycle.follow_page_device();
    let lost = Rc::new(std::cell::RefCell::new(None));
    let keep = lost.clone();
    let init = page_webgpu(move |generation, on_lost| {
        *keep.borrow_mut() = Some(on_lost);
        async move { Ok(crate::backend::Backend { generation, ..crate::backend::Backend::cpu() }) }
    });
    futures::executor::block_on(init).unwrap();
    assert_eq!(page_generation(), 0, "each test thread has a page device of its own");
    assert!(!h.lifecycle.is_lost());
    (lost.borrow().as_ref().unwrap())("Destroyed: test".into());
    assert!(h.lifecycle.is_lost());
    assert_eq!(h.errors_since(0)[0].0, "DeviceLostError");
    assert_eq!(page_generation(), 1);
}

#[test]
fn a_fault_outside_any_work_is_one_error_event_and_a_fault_during_work_none() {
    use crate::backend::{GpuFault, GpuFaultKind};
    use crate::device::page_webgpu;
    let h = roomy();
    h.lifecycle.follow_page_device();
    let init = page_webgpu(move |generation, _on_lost| async move {
        Ok(crate::backend::Backend { generation, ..crate::backend::Backend::cpu() })
    });
    let backend = futures::executor::block_on(init).unwrap();
    let fault = |m: &str| GpuFault { kind: GpuFaultKind::Validation, message: m.into() };
    backend.faults.record(fault("idle"));
    let errors = h.errors_since(0);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].0, "GpuError");
    assert_eq!(
        errors[0].1,
        "The GPU reported an error while no model was loading or generating (WebGPU validation error: idle). \
         The models stay loaded; reload the page if errors repeat."
    );
    // During work (a load or a generation holds a guard) the work reports it, not the lifecycle.
    let work = backend.faults.begin();
    backend.faults.record(fault("during work"));
    drop(work);
    assert_eq!(h.errors_since(0).len(), 1);
    backend.faults.record(GpuFault { kind: GpuFaultKind::OutOfMemory, message: "oom".into() });
    assert_eq!(h.errors_since(0)[1].0, "OutOfMemoryError");
    // A lost device's late errors, and an older generation's, are not told.
    h.lifecycle.device_lost(0, "Destroyed");
    backend.faults.record(fault("after the loss"));
    h.lifecycle.device_fault(7, &fault("another generation"));
    assert_eq!(h.errors_since(0).len(), 3, "{:?}", h.errors_since(0));
}

#[test]
fn ten_concurrent_switches_load_each_key_once_and_leave_a_consistent_state() {
    let mut h = roomy();
    let gate = h.hold("a");
    let keys = ["a", "b", "a", "c", "b", "a", "c", "b", "a", "c"];
    let calls: Vec<_> = keys.iter().map(|k| h.spawn(h.lifecycle.switch(k, None))).collect();
    h.pool.run_until_stalled();
    gate.send(()).unwrap();
    h.pool.run_until_stalled();
    for (call, key) in calls.iter().zip(keys) {
        let done = call.borrow_mut().take().unwrap().unwrap();
        assert_eq!(done.key, key, "every call resolves with its own model");
    }
    assert_eq!(*h.engine().loads.borrow(), ["a", "b", "c"], "one load per distinct key, in call order");
    for key in ["a", "b", "c"] {
        let loading = format!("Loading model {key}...");
        assert_eq!(h.recorder.infos().iter().filter(|m| **m == loading).count(), 1);
    }
    // The last operation of the chain (c's, which the last call joined) made its model current.
    assert_eq!(h.lifecycle.current().as_deref(), Some("c"));
    let mut loaded = h.loaded_keys();
    loaded.sort();
    assert_eq!(loaded, ["a", "b", "c"]);
    let sum: u64 = h.lifecycle.resident().iter().map(|r| r.account.bytes).sum();
    assert_eq!(h.engine().memory.registered_bytes(), sum);
    assert!(h.lifecycle.is_ready() && h.lifecycle.loading().is_none());
    assert!(h.errors_since(0).is_empty());
}
