//! How many threads the CPU engine computes on in this build, and the status line a browser load
//! says it with.
//!
//! Natively the large matrix products are split over a pool of threads
//! ([`super::CpuOptions::threads`]). The wasm32 build computes on the calling thread (the page's
//! main thread, or the Worker the package runs in): threads in a browser need shared wasm memory,
//! which only a cross-origin isolated page (COOP/COEP headers) may create, and this engine does not
//! split its products across threads in the browser on any page. A page must be able to tell why a
//! CPU model is slower than on a GPU, so a browser load says so on the status stream.

/// The status line for model `key` loaded on the CPU engine in the browser, given whether the page
/// is cross-origin isolated (`None`: the global does not say).
pub fn one_thread_message(key: &str, isolated: Option<bool>) -> String {
    let page = match isolated {
        Some(true) => {
            "this page is cross-origin isolated, but the browser build of the CPU engine does not split its work across threads"
        }
        Some(false) => {
            "the browser build of the CPU engine does not split its work across threads, and threads would also need a cross-origin isolated page (COOP/COEP headers), which this page is not"
        }
        None => {
            "the browser build of the CPU engine does not split its work across threads (threads would also need a cross-origin isolated page, COOP/COEP headers)"
        }
    };
    format!("The CPU engine runs {key} on one thread: {page}.")
}

/// What a load of `key` on the CPU engine says about threads: the line above in the browser,
/// nothing natively (where the products run on the thread pool).
pub fn load_note(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        Some(one_thread_message(key, cross_origin_isolated()))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = key;
        None
    }
}

/// `globalThis.crossOriginIsolated` (a window's or a worker's), when the global has it.
#[cfg(target_arch = "wasm32")]
fn cross_origin_isolated() -> Option<bool> {
    let global = js_sys::global();
    js_sys::Reflect::get(&global, &wasm_bindgen::JsValue::from_str("crossOriginIsolated"))
        .ok()
        .and_then(|v| v.as_bool())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_model_one_thread_and_what_isolation_does() {
        let not = one_thread_message("smollm2", Some(false));
        assert!(not.starts_with("The CPU engine runs smollm2 on one thread: "), "{not}");
        assert!(not.contains("which this page is not"), "{not}");
        let yes = one_thread_message("smollm2", Some(true));
        assert!(yes.contains("this page is cross-origin isolated, but"), "{yes}");
        assert!(!yes.contains("which this page is not"), "{yes}");
        let unknown = one_thread_message("m", None);
        for m in [&not, &yes, &unknown] {
            assert!(m.contains("cross-origin isolated") && m.ends_with('.'), "{m}");
        }
    }

    #[test]
    fn natively_a_load_says_nothing_about_threads() {
        assert_eq!(load_note("m"), None);
    }
}
