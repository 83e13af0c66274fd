use super::catalog::CATALOG_CONTEXT;
use super::testing::catalog_entry as entry;
use super::*;

// ---------------------------------------------------------------------------------------------
// Catalog

#[test]
fn builtin_catalog_has_the_seed_default_and_the_larger_public_models() {
    let c = Catalog::builtin();
    let keys = c.keys();
    assert_eq!(keys[0], DEFAULT_MODEL_KEY);
    for k in ["gemma-3-270m", "smollm2-135m", "qwen2.5-0.5b", "gemma-3-1b", "llama-3.2-1b", "qwen2.5-1.5b"] {
        let e = c.lookup(k).unwrap();
        assert!(e.url.starts_with("https://huggingface.co/"), "{k}: {}", e.url);
        assert!(e.url.ends_with(".gguf"), "{k}");
        assert_eq!(e.sha256.as_deref().map(str::len), Some(64), "{k}");
        e.validate(true).unwrap();
    }
}

#[test]
fn catalog_json_accepts_a_list_or_an_object_and_round_trips() {
    let list = r#"[{"key":"a","url":"/a.gguf","arch":"llama","quant":"Q4_0","fileBytes":10,"contextLength":8}]"#;
    let c = Catalog::from_json(list).unwrap();
    assert_eq!(c.keys(), ["a"]);
    let obj = format!(r#"{{"models":{list}}}"#);
    assert_eq!(Catalog::from_json(&obj).unwrap(), c);
    let again = serde_json::to_string(c.entries()).unwrap();
    assert_eq!(Catalog::from_json(&again).unwrap(), c);
}

#[test]
fn catalog_rejects_bad_entries_naming_the_field() {
    let cases = [
        (r#"{"key":"","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1}"#, "key"),
        (r#"{"key":"a b","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1}"#, "key"),
        (r#"{"key":"a","url":" ","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1}"#, "url"),
        (r#"{"key":"a","url":"/a","arch":"","quant":"Q","fileBytes":1,"contextLength":1}"#, "arch"),
        (r#"{"key":"a","url":"/a","arch":"llama","quant":"Q","fileBytes":0,"contextLength":1}"#, "fileBytes"),
        (r#"{"key":"a","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":0}"#, "contextLength"),
        (
            r#"{"key":"a","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1,"sha256":"XYZ"}"#,
            "sha256",
        ),
        (
            r#"{"key":"a","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1,"requiredBytes":0}"#,
            "requiredBytes",
        ),
    ];
    for (json, field) in cases {
        match Catalog::from_json(&format!("[{json}]")) {
            Err(CatalogError::Invalid { field: f, .. }) => assert_eq!(f, field, "{json}"),
            other => panic!("{json}: {other:?}"),
        }
    }
    let dup = r#"[{"key":"a","url":"/a","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1},
                  {"key":"a","url":"/b","arch":"llama","quant":"Q","fileBytes":1,"contextLength":1}]"#;
    assert!(matches!(Catalog::from_json(dup), Err(CatalogError::Invalid { field: "key", .. })));
    let e = Catalog::from_json("{").unwrap_err();
    assert_eq!(e.code().as_str(), "INVALID_CATALOG");
    assert!(e.to_string().contains("fileBytes"), "{e}");
    // A missing field is named by serde.
    let e = Catalog::from_json(r#"[{"key":"a"}]"#).unwrap_err();
    assert!(e.to_string().contains("missing field"), "{e}");
}

#[test]
fn register_adds_or_replaces_and_lookup_lists_known_keys() {
    let mut c = Catalog::default();
    assert_eq!(c.register(entry("a", 10, None), true).unwrap(), None);
    assert_eq!(c.register(entry("b", 20, None), true).unwrap(), None);
    let old = c.register(entry("a", 30, None), true).unwrap().unwrap();
    assert_eq!(old.file_bytes, 10);
    assert_eq!(c.get("a").unwrap().file_bytes, 30);
    assert_eq!(c.keys(), ["a", "b"]);
    let mut no_url = entry("c", 5, None);
    no_url.url.clear();
    assert!(matches!(c.register(no_url.clone(), true), Err(CatalogError::Invalid { field: "url", .. })));
    c.register(no_url, false).unwrap();
    let e = c.lookup("zzz").unwrap_err();
    assert_eq!(e.code().as_str(), "UNKNOWN_MODEL");
    assert_eq!(e.to_string(), "No model \"zzz\" in the catalog; known: a, b, c. Add it with registerModel().");
    let mut other = Catalog::default();
    other.register(entry("b", 99, None), true).unwrap();
    other.register(entry("d", 1, None), true).unwrap();
    c.merge(other);
    assert_eq!(c.keys(), ["a", "b", "c", "d"]);
    assert_eq!(c.get("b").unwrap().file_bytes, 99);
}

#[test]
fn requirement_uses_the_precomputed_figure_only_at_its_context() {
    let e = entry("a", 100 << 20, Some(150 << 20));
    assert_eq!(e.requirement(CATALOG_CONTEXT).total_bytes, 150 << 20);
    let other = e.requirement(4096);
    assert!(!other.exact);
    assert_eq!(other.total_bytes, crate::memory::Requirement::estimate_from_catalog(100 << 20, 4096).total_bytes);
    let none = entry("b", 100 << 20, None).requirement(CATALOG_CONTEXT);
    assert_eq!(none.total_bytes, crate::memory::Requirement::estimate_from_catalog(100 << 20, 2048).total_bytes);
}

#[test]
fn suggestions_are_the_models_that_fit_largest_first_without_the_failed_one() {
    let mut c = Catalog::default();
    for (k, b) in [("big", 900), ("mid", 400), ("small", 100), ("mid2", 400), ("tiny", 50)] {
        c.register(entry(k, b, Some(b)), true).unwrap();
    }
    let fits = |e: &CatalogEntry| (e.file_bytes <= 400).then_some(e.file_bytes);
    let s = c.suggestions("mid", fits);
    let keys: Vec<&str> = s.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["mid2", "small", "tiny"]);
    assert_eq!(s[0].required_bytes, 400);
    assert!(c.suggestions("big", |_| None).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Task queue

#[test]
fn queue_runs_higher_priority_first_and_fifo_within_a_priority() {
    let mut q = TaskQueue::new();
    let a = q.push(0, "a");
    let b = q.push(5, "b");
    let c = q.push(0, "c");
    let d = q.push(5, "d");
    let e = q.push(-1, "e");
    let f = q.push(10, "f");
    assert_eq!((a, b, c, d, e, f), (1, 2, 3, 4, 5, 6));
    let order: Vec<&str> = q.pending().map(|t| t.item).collect();
    assert_eq!(order, ["f", "b", "d", "a", "c", "e"]);
    assert_eq!(q.len(), 6);
    assert_eq!(q.remove(d).unwrap().item, "d");
    assert!(q.remove(d).is_none());
    let mut out = Vec::new();
    while let Some(t) = q.pop() {
        out.push((t.id, t.item));
        if t.item == "b" {
            // Enqueued while others wait: after every task of its priority or higher.
            q.push(5, "g");
            q.push(6, "h");
        }
    }
    let items: Vec<&str> = out.iter().map(|t| t.1).collect();
    assert_eq!(items, ["f", "b", "h", "g", "a", "c", "e"]);
    assert!(q.is_empty());
    assert!(q.pop().is_none());
}

// ---------------------------------------------------------------------------------------------
// Task runner

#[test]
fn runner_runs_one_task_at_a_time_in_queue_order_and_cancels_waiting_and_running_ones() {
    use std::cell::RefCell;
    use std::rc::Rc;

    use futures::channel::oneshot;
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;

    type Gated = (&'static str, RefCell<Option<oneshot::Receiver<()>>>);
    let runner: Rc<TaskRunner<Gated>> = Rc::new(TaskRunner::new());
    let (tx, rx) = oneshot::channel();
    let first = runner.push(0, ("first", RefCell::new(Some(rx))));
    let low = runner.push(0, ("low", RefCell::default()));
    let high = runner.push(5, ("high", RefCell::default()));
    let gone = runner.push(1, ("gone", RefCell::default()));
    assert_eq!(runner.pending(|q| q.id), [high, gone, first, low]);
    let ran = Rc::new(RefCell::new(Vec::new()));
    let mut pool = LocalPool::new();
    let pump = |runner: Rc<TaskRunner<_>>, ran: Rc<RefCell<Vec<&'static str>>>| async move {
        runner
            .pump(|id, task: Rc<Gated>| {
                let ran = ran.clone();
                async move {
                    ran.borrow_mut().push(task.0);
                    let gate = task.1.borrow_mut().take();
                    if let Some(gate) = gate {
                        let _ = gate.await;
                    }
                    let _ = id;
                }
            })
            .await
    };
    assert!(matches!(runner.cancel(gone), Cancelled::Waiting(("gone", _))));
    pool.spawner().spawn_local(pump(runner.clone(), ran.clone())).unwrap();
    // A second pump while one runs returns at once.
    pool.spawner().spawn_local(pump(runner.clone(), ran.clone())).unwrap();
    pool.run_until_stalled();
    assert_eq!(*ran.borrow(), ["high", "first"], "first waits; low has not started");
    assert_eq!(runner.running(), Some(first));
    assert!(matches!(runner.cancel(first), Cancelled::Running(t) if t.0 == "first"));
    assert!(matches!(runner.cancel(999), Cancelled::Unknown));
    tx.send(()).unwrap();
    pool.run_until_stalled();
    assert_eq!(*ran.borrow(), ["high", "first", "low"]);
    assert_eq!(runner.running(), None);
    assert!(matches!(runner.cancel(first), Cancelled::Unknown), "a finished task is let go");
    assert!(runner.pending(|q| q.id).is_empty());
}

#[test]
fn an_entry_checks_the_file_architecture_and_names_a_missing_source() {
    let e = entry("tiny", 100, None);
    assert_eq!(e.check_arch("llama"), Ok(()));
    let wrong = e.check_arch("gemma3").unwrap_err();
    assert_eq!(wrong.code(), crate::error::ErrorCode::CatalogMismatch);
    assert_eq!(wrong.to_string(), "tiny is a gemma3 model, but the catalog says llama; fix the catalog entry.");
    let none = e.no_source();
    assert_eq!(none.code(), crate::error::ErrorCode::NoModelSource);
    assert_eq!(none.to_string(), "Catalog entry tiny has no url and no file; registerModel() it with one.");
}

#[test]
fn manager_options_default_to_eviction_and_the_cache_and_refuse_a_zero_context() {
    let defaults = ManagerOptions::default();
    assert_eq!(defaults.settings().unwrap(), Settings::default());
    assert!(defaults.use_cache());
    let options: ManagerOptions =
        serde_json::from_str(r#"{ "contextLength": 512, "autoFallback": true, "evict": false, "cache": false }"#)
            .unwrap();
    let settings = options.settings().unwrap();
    assert_eq!((settings.context_length, settings.auto_fallback, settings.evict), (Some(512), true, false));
    assert!(!options.use_cache());
    let zero = ManagerOptions { context_length: Some(0), ..ManagerOptions::default() };
    let err = zero.settings().unwrap_err();
    assert_eq!(
        (err.kind.code(), err.message.as_str()),
        (crate::error::ErrorCode::InvalidOptions, "contextLength must be at least 1.")
    );
}

#[test]
fn a_resident_model_lists_as_a_camel_case_row() {
    let account = crate::memory::LoadedModel {
        key: "tiny".into(),
        bytes: 1024,
        last_used: Some(5.0),
        use_order: 3,
        pinned: true,
    };
    let row = ResidentModel { account, current: true, model: () }.row("webgpu".into());
    assert_eq!(
        serde_json::to_value(&row).unwrap(),
        serde_json::json!({
            "key": "tiny", "bytes": 1024, "current": true, "pinned": true, "lastUsed": 5.0, "backend": "webgpu"
        })
    );
}

// ---------------------------------------------------------------------------------------------
// FileBook

#[test]
fn file_book_tracks_supplied_opened_and_cached_files() {
    let book: FileBook<&str, &str> = FileBook::default();
    let a = entry("a", 10, None);
    assert!(book.uses_url(&a));
    book.open("a", "a-from-url", false);
    assert_eq!((book.opened("a"), book.is_cached("a")), (Some("a-from-url"), false));
    // A file the app supplies replaces the URL and forgets the header read from it.
    book.set_source("a", Some("a-blob"));
    assert!(!book.uses_url(&a));
    assert_eq!((book.supplied("a"), book.opened("a")), (Some("a-blob"), None));
    book.set_source("a", None);
    assert!(book.uses_url(&a) && book.supplied("a").is_none());
    let no_url = CatalogEntry { url: String::new(), ..entry("b", 10, None) };
    assert!(!book.uses_url(&no_url));
}

#[test]
fn file_book_forgets_cached_copies_by_key_or_all() {
    let book: FileBook<u32, ()> = FileBook::default();
    book.open("a", 1, true);
    book.open("b", 2, true);
    book.open("c", 3, false);
    assert!(book.is_cached("a") && book.is_cached("b") && !book.is_cached("c"));
    book.forget_cached(Some("a"));
    assert_eq!((book.opened("a"), book.opened("b")), (None, Some(2)));
    book.forget_cached(None);
    assert_eq!((book.opened("b"), book.opened("c")), (None, Some(3)));
    // Reopened from the network, a key is no longer the cached copy.
    book.open("c", 4, true);
    book.open("c", 5, false);
    assert!(!book.is_cached("c"));
}

#[test]
fn an_apps_catalog_replaces_the_builtin_entries_with_its_keys() {
    assert_eq!(Catalog::builtin_with(None).unwrap(), Catalog::builtin());
    let mine = r#"[{"key":"smollm2-135m","url":"/m.gguf","arch":"llama","quant":"Q4_0","fileBytes":7,"contextLength":8},
                  {"key":"mine","url":"/mine.gguf","arch":"llama","quant":"Q4_0","fileBytes":9,"contextLength":8}]"#;
    let c = Catalog::builtin_with(Some(mine)).unwrap();
    assert_eq!(c.lookup("smollm2-135m").unwrap().url, "/m.gguf");
    assert_eq!(c.lookup("mine").unwrap().file_bytes, 9);
    assert_eq!(c.keys().len(), Catalog::builtin().keys().len() + 1);
    assert_eq!(Catalog::builtin_with(Some("")).unwrap_err().code().as_str(), "INVALID_CATALOG");
}
