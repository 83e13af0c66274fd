//! How many threads the CPU engine computes on, and the status line a browser load says it with.
//!
//! Natively the large matrix products are split over a pool of threads
//! ([`super::CpuOptions::threads`]). In the browser they are split across shard workers
//! ([`super::team`]), which need a `SharedArrayBuffer`, which only a cross-origin isolated page
//! (COOP/COEP headers) may create; elsewhere, or when a shard worker fails to start, the engine
//! computes on the calling thread. A page must be able to tell why a CPU model is slower than it
//! could be, so a browser load says which on the status stream.

use super::team::{DEFAULT_MAX, MAX_THREADS};

/// What a CPU load runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Threads {
    /// Products split across this many threads (the caller and `n - 1` shard workers).
    Split(usize),
    /// One thread, and why.
    One(Why),
}

/// Why a browser load runs on one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// `threads: 1` was asked for.
    Asked,
    /// The browser reports one hardware thread.
    OneCore,
    /// The page is not cross-origin isolated (`None`: the global does not say).
    NotIsolated(Option<bool>),
    /// A shard worker could not start: the browser's words.
    Failed(String),
}

/// The threads a load asks for when `LoadOptions.threads` is not given:
/// `navigator.hardwareConcurrency`, at most [`DEFAULT_MAX`] (1 when the browser does not say).
pub fn default_threads(hardware: Option<f64>) -> u32 {
    match hardware {
        Some(h) if h.is_finite() && h >= 1.0 => (h as u32).clamp(1, DEFAULT_MAX.min(MAX_THREADS)),
        _ => 1,
    }
}

/// The status line for model `key` loaded on the CPU engine in the browser.
pub fn message(key: &str, threads: &Threads) -> String {
    let why = match threads {
        Threads::Split(n) => {
            return format!(
                "The CPU engine runs {key} on {n} threads: each large matrix product is split across this thread and {} shard worker{} (the page is cross-origin isolated).",
                n - 1,
                if *n == 2 { "" } else { "s" }
            );
        }
        Threads::One(Why::Asked) => "one thread was asked for (threads: 1)".to_owned(),
        Threads::One(Why::OneCore) => "the browser reports one hardware thread".to_owned(),
        Threads::One(Why::NotIsolated(Some(false))) => {
            "threads need a cross-origin isolated page (COOP/COEP headers), which this page is not".to_owned()
        }
        Threads::One(Why::NotIsolated(_)) => {
            "threads need a cross-origin isolated page (COOP/COEP headers), and this global does not say it is one"
                .to_owned()
        }
        Threads::One(Why::Failed(e)) => format!("a shard worker failed to start ({e})"),
    };
    format!("The CPU engine runs {key} on one thread: {why}.")
}

/// The CPU engine for a browser load asking for `requested` threads (default
/// [`default_threads`]): shard workers when the page is cross-origin isolated and they start,
/// else one thread; with what the load says about it.
#[cfg(target_arch = "wasm32")]
pub async fn engine(requested: Option<u32>) -> (super::Cpu, Threads) {
    let explicit = requested.is_some();
    let want = requested.unwrap_or_else(|| default_threads(hardware_concurrency()));
    if want <= 1 {
        return (super::Cpu::new(), Threads::One(if explicit { Why::Asked } else { Why::OneCore }));
    }
    let isolated = cross_origin_isolated();
    if isolated != Some(true) {
        return (super::Cpu::new(), Threads::One(Why::NotIsolated(isolated)));
    }
    match super::team::web::WebPeers::start(want as usize).await {
        Ok(peers) => (super::Cpu::with_peers(Box::new(peers)), Threads::Split(want as usize)),
        Err(e) => (super::Cpu::new(), Threads::One(Why::Failed(e))),
    }
}

/// The CPU engine for a native load: the thread pool, `requested` threads (the machine's cores
/// when `None`); nothing to say.
#[cfg(not(target_arch = "wasm32"))]
pub async fn engine(requested: Option<u32>) -> (super::Cpu, Threads) {
    let mut cpu = super::Cpu::new();
    if let Some(t) = requested {
        cpu.options.threads = t as usize;
    }
    let n = cpu.threads();
    (cpu, Threads::Split(n))
}

/// Whether a load of `key` says something about threads, and what: in the browser always,
/// natively never (the pool is the documented default there).
pub fn load_note(key: &str, threads: &Threads) -> Option<String> {
    if cfg!(target_arch = "wasm32") { Some(message(key, threads)) } else { None }
}

/// `globalThis.crossOriginIsolated` (a window's or a worker's), when the global has it.
#[cfg(target_arch = "wasm32")]
fn cross_origin_isolated() -> Option<bool> {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &wasm_bindgen::JsValue::from_str("crossOriginIsolated"))
        .ok()
        .and_then(|v| v.as_bool())
}

/// `navigator.hardwareConcurrency`, in a window or a worker.
#[cfg(target_arch = "wasm32")]
fn hardware_concurrency() -> Option<f64> {
    use wasm_bindgen::JsValue;
    let navigator = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator")).ok()?;
    js_sys::Reflect::get(&navigator, &JsValue::from_str("hardwareConcurrency")).ok()?.as_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_model_the_threads_and_why() {
        let split = message("smollm2", &Threads::Split(2));
        assert!(split.starts_with("The CPU engine runs smollm2 on 2 threads: "), "{split}");
        assert!(split.contains("1 shard worker (") && split.contains("cross-origin isolated"), "{split}");
        assert!(message("m", &Threads::Split(4)).contains("3 shard workers"));
        let not = message("smollm2", &Threads::One(Why::NotIsolated(Some(false))));
        assert!(not.starts_with("The CPU engine runs smollm2 on one thread: "), "{not}");
        assert!(not.contains("cross-origin isolated page (COOP/COEP headers), which this page is not"), "{not}");
        let unknown = message("m", &Threads::One(Why::NotIsolated(None)));
        assert!(unknown.contains("does not say"), "{unknown}");
        let failed = message("m", &Threads::One(Why::Failed("boom".into())));
        assert!(failed.contains("a shard worker failed to start (boom)"), "{failed}");
        assert!(message("m", &Threads::One(Why::Asked)).contains("threads: 1"));
        assert!(message("m", &Threads::One(Why::OneCore)).contains("one hardware thread"));
        for m in [&split, &not, &unknown, &failed] {
            assert!(m.ends_with('.'), "{m}");
        }
    }

    #[test]
    fn the_default_is_the_hardware_threads_capped() {
        assert_eq!(default_threads(Some(2.0)), 2);
        assert_eq!(default_threads(Some(64.0)), DEFAULT_MAX);
        assert_eq!(default_threads(Some(0.0)), 1);
        assert_eq!(default_threads(None), 1);
        assert_eq!(default_threads(Some(f64::NAN)), 1);
    }

    #[test]
    fn natively_a_load_says_nothing_and_takes_the_pool_threads() {
        assert_eq!(load_note("m", &Threads::Split(2)), None);
        let (cpu, threads) = futures::executor::block_on(engine(Some(3)));
        assert_eq!((cpu.threads(), threads), (3, Threads::Split(3)));
    }
}
