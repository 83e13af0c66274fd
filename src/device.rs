//! The one compute device a page holds, over its lifetime: which backend a caller may get
//! ([`Preference`]), one shared initialisation that every caller awaits, the *generation*
//! that grows after each loss, the listeners told of a loss, and what people are told along
//! the way.
//!
//! WebGPU can be registered with burn once per device kind, so the first successful
//! initialisation is kept and every later (and every concurrent) caller gets the same device;
//! a failed attempt is not kept, so the next caller tries again. When the device is lost, it is
//! forgotten, the listeners are told, and the next initialisation is the next generation (a new
//! burn runtime). [`DeviceSlot`] is that bookkeeping, generic over the pending initialisation
//! (a shared future in the browser); the web layer holds one per page.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};

use crate::backend::{AdapterInfo, Backend, BackendError, GpuFault};
use crate::error::Coded;
use crate::input::InputError;
use crate::status::{ErrorInfo, StatusStream};

/// Which backend a caller may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preference {
    /// WebGPU, else the CPU (and the status stream says so).
    Auto,
    /// WebGPU or an error.
    Webgpu,
    Cpu,
}

impl Preference {
    /// `'auto'` (also the default, `None`), `'webgpu'` or `'cpu'`.
    pub fn from_name(name: Option<&str>) -> Result<Preference, InputError> {
        match name {
            None | Some("auto") => Ok(Preference::Auto),
            Some("webgpu") => Ok(Preference::Webgpu),
            Some("cpu") => Ok(Preference::Cpu),
            Some(other) => {
                Err(InputError::argument(format!("Unknown backend {other:?}; expected 'auto', 'webgpu' or 'cpu'.")))
            }
        }
    }

    /// The error for a backend option that is not a string at all.
    pub fn not_a_name() -> InputError {
        InputError::argument("The backend must be 'auto', 'webgpu' or 'cpu'.")
    }
}

/// A listener told `(generation, message)` when a device of that generation is lost.
pub type LostListener = Rc<dyn Fn(u32, &str)>;

/// A listener told `(generation, fault)` when a device of that generation reports a WebGPU error
/// while no work runs on it ([`crate::backend::DeviceFaults::on_idle_fault`]).
pub type FaultListener = Rc<dyn Fn(u32, &GpuFault)>;

/// The page's device slot: the pending or finished initialisation `P` of the current
/// generation, the generation counter and the loss listeners.
pub struct DeviceSlot<P> {
    pending: RefCell<Option<P>>,
    /// The generation the next initialisation gets (the current one's, until a loss).
    generation: Cell<u32>,
    listeners: RefCell<Vec<LostListener>>,
    fault_listeners: RefCell<Vec<FaultListener>>,
}

impl<P> Default for DeviceSlot<P> {
    fn default() -> Self {
        DeviceSlot {
            pending: RefCell::new(None),
            generation: Cell::new(0),
            listeners: RefCell::new(Vec::new()),
            fault_listeners: RefCell::new(Vec::new()),
        }
    }
}

impl<P: Clone> DeviceSlot<P> {
    pub fn new() -> Self {
        DeviceSlot::default()
    }

    /// The generation of the device now (0, then one more after each loss).
    pub fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// The kept initialisation, started with `start(generation)` when there is none.
    pub fn get_or_start(&self, start: impl FnOnce(u32) -> P) -> P {
        self.pending.borrow_mut().get_or_insert_with(|| start(self.generation.get())).clone()
    }

    /// The kept initialisation, if any.
    pub fn current(&self) -> Option<P> {
        self.pending.borrow().clone()
    }

    /// Drops the kept initialisation (it failed): the next caller starts a new one.
    pub fn forget(&self) {
        self.pending.borrow_mut().take();
    }

    /// Calls `listener(generation, message)` whenever a device of the page is lost.
    pub fn on_lost(&self, listener: LostListener) {
        self.listeners.borrow_mut().push(listener);
    }

    /// Calls `listener(generation, fault)` whenever a device of the page reports an error while
    /// no work runs on it.
    pub fn on_fault(&self, listener: FaultListener) {
        self.fault_listeners.borrow_mut().push(listener);
    }

    /// The device of `generation` reported `fault` outside any work: told to every listener.
    pub fn fault(&self, generation: u32, fault: &GpuFault) {
        let listeners: Vec<FaultListener> = self.fault_listeners.borrow().clone();
        for listener in listeners {
            listener(generation, fault);
        }
    }

    /// The device of generation `lost` is gone: the first report of it forgets the device and
    /// moves to the next generation; every report is told to the listeners.
    pub fn lost(&self, lost: u32, message: &str) {
        if self.generation.get() == lost {
            self.generation.set(lost + 1);
            self.forget();
        }
        // A snapshot, with no borrow held: a listener may register another.
        let listeners: Vec<LostListener> = self.listeners.borrow().clone();
        for listener in listeners {
            listener(lost, message);
        }
    }
}

/// What the browser says about its adapter (`GPUAdapter.info`); empty fields are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserAdapterInfo {
    pub vendor: Option<String>,
    pub architecture: Option<String>,
    pub device: Option<String>,
    pub description: Option<String>,
    /// `isFallbackAdapter` (on `GPUAdapterInfo` in newer browsers, on `GPUAdapter` in older).
    pub is_fallback_adapter: Option<bool>,
}

impl AdapterInfo {
    /// Whether `browser` describes the adapter this device was created on. wgpu's WebGPU
    /// backend reports only `description` (as the name) and `isFallbackAdapter` of the adapter it
    /// holds, so the full facts come from a second `requestAdapter()`; on a machine with two
    /// GPUs that answer may be the other one. It is the same adapter when its description and
    /// fallback flag are this one's. Call before [`Self::describe_from`] renames the adapter.
    pub fn is_described_by(&self, browser: &BrowserAdapterInfo) -> bool {
        browser.description.as_deref().unwrap_or("") == self.name
            && browser.is_fallback_adapter.is_none_or(|f| f == self.is_fallback_adapter)
    }

    /// Takes the browser's word for the adapter's identity when `browser` describes this adapter
    /// ([`Self::is_described_by`]); returns whether it did. Browsers often hide `device` and
    /// `description` for privacy; the name falls back to them in that order, then to vendor and
    /// architecture together (e.g. "google swiftshader"), which still tell a person what this
    /// is. Absent fields change nothing.
    pub fn describe_from(&mut self, browser: BrowserAdapterInfo) -> bool {
        if !self.is_described_by(&browser) {
            return false;
        }
        let fallback =
            [browser.vendor.clone(), browser.architecture.clone()].into_iter().flatten().collect::<Vec<_>>().join(" ");
        if let Some(name) = browser.device.clone().or_else(|| browser.description.clone()) {
            self.name = name;
        } else if !fallback.is_empty() {
            self.name = fallback;
        }
        if let Some(vendor) = browser.vendor {
            self.vendor = vendor;
        }
        if let Some(architecture) = browser.architecture {
            self.architecture = architecture;
        }
        if let Some(description) = browser.description {
            self.description = description;
        }
        true
    }

    /// The `info` line once the device is ready.
    pub fn ready_message(&self) -> String {
        format!(
            "WebGPU ready: {} ({}), max storage binding {} MiB.",
            if self.name.is_empty() { "unnamed adapter" } else { &self.name },
            self.backend,
            self.max_storage_buffer_binding_size >> 20
        )
    }
}

/// The `info` line when `'auto'` falls back to the CPU because WebGPU is unavailable.
pub fn fallback_message(error: &BackendError) -> String {
    format!("WebGPU is unavailable ({error}); falling back to the CPU backend, which is much slower.")
}

/// The WebGPU initialisation every caller awaits: started once per generation, shared.
pub type PendingBackend = Shared<LocalBoxFuture<'static, Result<Rc<Backend>, BackendError>>>;

/// What a WebGPU device calls with the browser's message when it is lost.
pub type LostCallback = Box<dyn Fn(String) + Send>;

thread_local! {
    /// The page's one WebGPU device (natively, the thread's).
    static PAGE: DeviceSlot<PendingBackend> = DeviceSlot::new();
}

/// The page's WebGPU device: the shared initialisation, started on first use with
/// `init(generation, on_lost)` (`on_lost` is what the device calls when the browser reports it
/// lost: the page forgets it, tells the listeners, and the next call starts the next
/// generation). A failed initialisation is forgotten, so the next call tries again.
pub fn page_webgpu<F>(init: impl FnOnce(u32, LostCallback) -> F) -> PendingBackend
where
    F: Future<Output = Result<Backend, BackendError>> + 'static,
{
    PAGE.with(|slot| {
        slot.get_or_start(|generation| {
            let on_lost = move |message: String| PAGE.with(|slot| slot.lost(generation, &message));
            let started = init(generation, Box::new(on_lost));
            async move {
                let result = started.await.map(|backend| {
                    // The page's listeners hear the device's errors outside any work.
                    let told = move |fault: &GpuFault| PAGE.with(|slot| slot.fault(generation, fault));
                    backend.faults.on_idle_fault(std::sync::Arc::new(told));
                    Rc::new(backend)
                });
                if result.is_err() {
                    PAGE.with(DeviceSlot::forget);
                }
                result
            }
            .boxed_local()
            .shared()
        })
    })
}

/// The generation of the page's WebGPU device now (0, then one more after each loss).
pub fn page_generation() -> u32 {
    PAGE.with(DeviceSlot::generation)
}

/// Calls `listener(generation, message)` whenever a WebGPU device of the page is lost.
pub fn on_page_device_lost(listener: LostListener) {
    PAGE.with(|slot| slot.on_lost(listener));
}

/// Calls `listener(generation, fault)` whenever a WebGPU device of the page reports an error
/// while no work runs on it (no load, no generation).
pub fn on_page_device_fault(listener: FaultListener) {
    PAGE.with(|slot| slot.on_fault(listener));
}

/// Destroys the page's WebGPU device (`GPUDevice.destroy()`), as a driver reset would; `false`
/// when there is no initialised WebGPU device.
pub fn destroy_page_webgpu() -> bool {
    let ready = PAGE.with(DeviceSlot::current).and_then(|pending| pending.peek().cloned());
    if let Some(Ok(backend)) = ready
        && let Some(device) = &backend.wgpu
    {
        device.destroy();
        return true;
    }
    false
}

/// The device for `preference`, narrated on `status`: 'cpu' is the CPU backend; otherwise
/// `webgpu()` starts (or joins) the page's WebGPU initialisation, and 'auto' falls back to the
/// CPU when there is no adapter. Any other failure is told as an `error` event and returned.
pub async fn acquire<F>(
    preference: Preference,
    status: Option<&StatusStream>,
    webgpu: impl FnOnce() -> F,
) -> Result<Rc<Backend>, BackendError>
where
    F: Future<Output = Result<Rc<Backend>, BackendError>>,
{
    let say = |message: String| {
        if let Some(s) = status {
            s.info(message, None);
        }
    };
    if preference == Preference::Cpu {
        say("Using the CPU backend.".to_owned());
        return Ok(Rc::new(Backend::cpu()));
    }
    say("Requesting a WebGPU adapter...".to_owned());
    match webgpu().await {
        Ok(backend) => {
            if let Some(a) = &backend.adapter {
                say(a.ready_message());
            }
            Ok(backend)
        }
        Err(e @ BackendError::NoAdapter { .. }) if preference == Preference::Auto => {
            say(fallback_message(&e));
            Ok(Rc::new(Backend::cpu()))
        }
        Err(e) => {
            if let Some(s) = status {
                s.error(ErrorInfo::of(e.code(), e.message()), None);
            }
            Err(e)
        }
    }
}

/// The largest matrix `checkDevice` multiplies, in elements.
pub const MAX_CHECK_ELEMENTS: usize = 1 << 24;

/// The sizes of `checkDevice`'s product: `m×k` times `k×n`, 64, 256 and 48 by default; each
/// positive and each matrix at most [`MAX_CHECK_ELEMENTS`].
pub fn check_dims(m: Option<u32>, k: Option<u32>, n: Option<u32>) -> Result<(usize, usize, usize), InputError> {
    let (m, k, n) = (m.unwrap_or(64) as usize, k.unwrap_or(256) as usize, n.unwrap_or(48) as usize);
    let too_big = |a: usize, b: usize| a.checked_mul(b).is_none_or(|e| e > MAX_CHECK_ELEMENTS);
    if m == 0 || k == 0 || n == 0 || too_big(m, k) || too_big(k, n) {
        return Err(InputError::argument(
            "checkDevice: m, k and n must be positive and each matrix at most 16M elements.",
        ));
    }
    Ok((m, k, n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::InputKind;

    #[test]
    fn preferences_are_named() {
        assert_eq!(Preference::from_name(None), Ok(Preference::Auto));
        assert_eq!(Preference::from_name(Some("auto")), Ok(Preference::Auto));
        assert_eq!(Preference::from_name(Some("webgpu")), Ok(Preference::Webgpu));
        assert_eq!(Preference::from_name(Some("cpu")), Ok(Preference::Cpu));
        let e = Preference::from_name(Some("gpu")).unwrap_err();
        assert_eq!(e.kind, InputKind::Argument);
        assert_eq!(e.message, "Unknown backend \"gpu\"; expected 'auto', 'webgpu' or 'cpu'.");
        assert_eq!(Preference::not_a_name().kind, InputKind::Argument);
    }

    #[test]
    fn the_slot_keeps_one_initialisation_per_generation() {
        let slot = DeviceSlot::<u32>::new();
        let mut starts = 0;
        assert_eq!(
            slot.get_or_start(|g| {
                starts += 1;
                g + 100
            }),
            100
        );
        assert_eq!(
            slot.get_or_start(|g| {
                starts += 1;
                g + 200
            }),
            100,
            "kept, not started again"
        );
        assert_eq!(starts, 1);
        assert_eq!(slot.current(), Some(100));
        // A failed attempt is forgotten: the next caller starts again, same generation.
        slot.forget();
        assert_eq!(slot.current(), None);
        assert_eq!(slot.get_or_start(|g| g + 300), 300);
        assert_eq!(slot.generation(), 0);
    }

    #[test]
    fn a_loss_moves_to_the_next_generation_once_and_tells_every_listener() {
        let slot = DeviceSlot::<u32>::new();
        slot.get_or_start(|g| g);
        let told = Rc::new(RefCell::new(Vec::new()));
        for who in ["a", "b"] {
            let told = told.clone();
            slot.on_lost(Rc::new(move |g, m: &str| told.borrow_mut().push(format!("{who}:{g}:{m}"))));
        }
        slot.lost(0, "Destroyed: gone");
        assert_eq!(slot.generation(), 1);
        assert_eq!(slot.current(), None, "the lost device is forgotten");
        assert_eq!(slot.get_or_start(|g| g + 10), 11, "the next initialisation is generation 1");
        // A late second report of generation 0 keeps generation 1's device.
        slot.lost(0, "again");
        assert_eq!((slot.generation(), slot.current()), (1, Some(11)));
        assert_eq!(*told.borrow(), ["a:0:Destroyed: gone", "b:0:Destroyed: gone", "a:0:again", "b:0:again"]);
    }

    #[test]
    fn a_fault_outside_any_work_is_told_to_every_fault_listener_and_changes_nothing() {
        use crate::backend::GpuFaultKind;
        let slot = DeviceSlot::<u32>::new();
        slot.get_or_start(|g| g);
        let told = Rc::new(RefCell::new(Vec::new()));
        for who in ["a", "b"] {
            let told = told.clone();
            slot.on_fault(Rc::new(move |g, f: &GpuFault| told.borrow_mut().push(format!("{who}:{g}:{}", f.message))));
        }
        slot.fault(0, &GpuFault { kind: GpuFaultKind::Validation, message: "bad buffer".into() });
        assert_eq!(*told.borrow(), ["a:0:bad buffer", "b:0:bad buffer"]);
        assert_eq!((slot.generation(), slot.current()), (0, Some(0)), "the device is kept");
    }

    #[test]
    fn acquiring_narrates_each_step_and_auto_falls_back_to_the_cpu_only_without_an_adapter() {
        use futures::executor::block_on;
        let recorder = crate::status::Recorder::new();
        let status = StatusStream::with_sink(Box::new(recorder.clone()));
        let no_adapter = || async { Err(BackendError::NoAdapter { detail: "none".into() }) };
        let cpu = block_on(acquire(Preference::Cpu, Some(&status), no_adapter)).unwrap();
        assert_eq!(cpu.kind, crate::backend::BackendKind::Cpu);
        assert_eq!(recorder.infos(), ["Using the CPU backend."]);
        let auto = block_on(acquire(Preference::Auto, Some(&status), no_adapter)).unwrap();
        assert_eq!(auto.kind, crate::backend::BackendKind::Cpu);
        assert_eq!(recorder.infos()[1], "Requesting a WebGPU adapter...");
        assert!(recorder.infos()[2].starts_with("WebGPU is unavailable (No WebGPU adapter"), "{:?}", recorder.infos());
        let e = block_on(acquire(Preference::Webgpu, Some(&status), no_adapter)).unwrap_err();
        assert!(matches!(e, BackendError::NoAdapter { .. }));
        let failed = || async { Err(BackendError::Init { detail: "refused".into() }) };
        assert!(block_on(acquire(Preference::Auto, None, failed)).is_err(), "only a missing adapter falls back");
        let errors: Vec<_> = recorder
            .events()
            .into_iter()
            .filter_map(|e| match &e.payload {
                crate::status::Payload::Error(info) => Some(info.name.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(errors, ["GpuUnavailableError"]);
    }

    #[test]
    fn the_page_device_is_initialised_once_a_failure_is_retried_and_a_loss_starts_the_next_generation() {
        use futures::executor::block_on;
        let starts = Rc::new(Cell::new(0));
        let lost: Rc<RefCell<Option<LostCallback>>> = Rc::default();
        let start = |fail: bool| {
            let (starts, lost) = (starts.clone(), lost.clone());
            page_webgpu(move |generation, on_lost| {
                starts.set(starts.get() + 1);
                *lost.borrow_mut() = Some(on_lost);
                async move {
                    if fail {
                        return Err(BackendError::Init { detail: "refused".into() });
                    }
                    Ok(Backend { generation, ..Backend::cpu() })
                }
            })
        };
        assert!(block_on(start(true)).is_err());
        assert_eq!(starts.get(), 1);
        let (one, two) = (start(false), start(true));
        assert_eq!(starts.get(), 2, "the failure was forgotten; the second caller joins the first");
        assert_eq!(block_on(one).unwrap().generation, 0);
        assert_eq!(block_on(two).unwrap().generation, 0);
        assert!(!destroy_page_webgpu(), "a CPU stand-in has no WebGPU device to destroy");
        let told = Rc::new(RefCell::new(Vec::new()));
        let sink = told.clone();
        on_page_device_lost(Rc::new(move |g, m: &str| sink.borrow_mut().push(format!("{g}:{m}"))));
        (lost.borrow().as_ref().unwrap())("Destroyed: gone".into());
        assert_eq!(*told.borrow(), ["0:Destroyed: gone"]);
        assert_eq!(page_generation(), 1);
        assert_eq!(block_on(start(false)).unwrap().generation, 1, "the next call starts generation 1");
        assert_eq!(starts.get(), 3);
    }

    fn adapter() -> AdapterInfo {
        AdapterInfo {
            name: String::new(),
            vendor: String::new(),
            architecture: String::new(),
            description: "driver".into(),
            backend: "BrowserWebGpu".into(),
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 128 << 20,
            shader_f16: false,
            subgroups: None,
            is_fallback_adapter: false,
        }
    }

    #[test]
    fn the_browser_names_the_adapter_with_fallbacks() {
        let some = |s: &str| Some(s.to_owned());
        let mut a = adapter();
        assert!(a.describe_from(BrowserAdapterInfo {
            vendor: some("google"),
            architecture: some("swiftshader"),
            ..Default::default()
        }));
        assert_eq!(
            (a.name.as_str(), a.vendor.as_str(), a.architecture.as_str()),
            ("google swiftshader", "google", "swiftshader")
        );
        assert_eq!(a.description, "driver", "absent fields change nothing");
        // wgpu names the adapter by its description; the browser's facts must agree.
        let mut a = AdapterInfo { name: "RTX".into(), ..adapter() };
        a.describe_from(BrowserAdapterInfo { vendor: some("nvidia"), description: some("RTX"), ..Default::default() });
        assert_eq!((a.name.as_str(), a.description.as_str(), a.vendor.as_str()), ("RTX", "RTX", "nvidia"));
        let mut a = AdapterInfo { name: "x".into(), ..adapter() };
        a.describe_from(BrowserAdapterInfo { device: some("Arc A770"), description: some("x"), ..Default::default() });
        assert_eq!(a.name, "Arc A770");
        let mut a = adapter();
        a.describe_from(BrowserAdapterInfo::default());
        assert_eq!(a, adapter());
        assert_eq!(a.ready_message(), "WebGPU ready: unnamed adapter (BrowserWebGpu), max storage binding 128 MiB.");
    }

    /// A second `requestAdapter()` that answers with another GPU (a dual-GPU laptop) or another
    /// fallback flag is not taken for the adapter in use.
    #[test]
    fn facts_of_another_adapter_are_refused() {
        let some = |s: &str| Some(s.to_owned());
        let in_use = AdapterInfo { name: "Intel(R) UHD Graphics 620".into(), ..adapter() };
        let other = BrowserAdapterInfo {
            vendor: some("nvidia"),
            description: some("NVIDIA GeForce MX150"),
            ..Default::default()
        };
        let mut a = in_use.clone();
        assert!(!a.describe_from(other));
        assert_eq!(a, in_use, "nothing taken from the other GPU");
        let same = BrowserAdapterInfo {
            vendor: some("intel"),
            description: some("Intel(R) UHD Graphics 620"),
            is_fallback_adapter: Some(false),
            ..Default::default()
        };
        assert!(in_use.is_described_by(&same));
        let fallback = BrowserAdapterInfo { is_fallback_adapter: Some(true), ..same.clone() };
        assert!(!in_use.is_described_by(&fallback), "the fallback flag must agree too");
        let mut a = in_use.clone();
        assert!(a.describe_from(same));
        assert_eq!(a.vendor, "intel");
    }

    #[test]
    fn check_sizes_default_and_are_bounded() {
        assert_eq!(check_dims(None, None, None), Ok((64, 256, 48)));
        assert_eq!(check_dims(Some(4096), Some(4096), Some(1)), Ok((4096, 4096, 1)));
        assert!(check_dims(Some(0), None, None).is_err());
        assert!(check_dims(Some(4097), Some(4096), None).is_err());
        assert!(check_dims(Some(u32::MAX), Some(u32::MAX), Some(u32::MAX)).is_err(), "no overflow");
        let e = check_dims(None, None, Some(0)).unwrap_err();
        assert_eq!(e.message, "checkDevice: m, k and n must be positive and each matrix at most 16M elements.");
    }

    #[test]
    fn the_fallback_names_the_reason() {
        let e = BackendError::NoAdapter { detail: "none".into() };
        assert!(fallback_message(&e).starts_with("WebGPU is unavailable (No WebGPU adapter is available (none)."));
    }
}
