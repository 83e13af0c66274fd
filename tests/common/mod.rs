//! What the native GPU test files share (each includes it with `mod common;`).
#![allow(dead_code)]

use hearth::backend::{WgpuDevice, init_wgpu_blocking};

/// A wgpu device on this machine's adapter (lavapipe here), `tasks_max` launches per submission
/// when given; `None` (and a note) when there is none and `HEARTH_SKIP_GPU=1` says to skip.
///
/// # Panics
/// When there is no adapter and skipping was not asked for.
pub fn device(tasks_max: Option<usize>) -> Option<WgpuDevice> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, in a single-test file.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    let device = WgpuDevice::default();
    match init_wgpu_blocking(&device, tasks_max) {
        Ok(_) => Some(device),
        Err(e) if std::env::var("HEARTH_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: no wgpu adapter ({e}); HEARTH_SKIP_GPU=1");
            None
        }
        Err(e) => panic!("no wgpu adapter: {e} (set HEARTH_SKIP_GPU=1 to skip)"),
    }
}
