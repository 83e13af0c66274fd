//! What the native GPU test files share (each includes it with `mod common;`).
#![allow(dead_code)]

use hearth::backend::{WgpuDevice, init_wgpu_blocking};
#[allow(unused_imports)] // for the docs
use hearth::infer::gpu::Gpu;
use hearth::infer::gpu::GpuFeatures;

/// A wgpu device on this machine's adapter (lavapipe here), `tasks_max` launches per submission
/// when given; `None` (and a note) when there is none and `HEARTH_SKIP_GPU=1` says to skip.
///
/// # Panics
/// When there is no adapter and skipping was not asked for.
pub fn device(tasks_max: Option<usize>) -> Option<WgpuDevice> {
    device_and_features(tasks_max).map(|(d, _)| d)
}

/// [`device`] and the optional features it has (for [`Gpu::with_features`]).
///
/// # Panics
/// As [`device`].
pub fn device_and_features(tasks_max: Option<usize>) -> Option<(WgpuDevice, GpuFeatures)> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        let dir = std::env::temp_dir().join("hearth-xdg");
        let _ = std::fs::create_dir_all(&dir);
        // SAFETY: set before the driver (the only reader) is loaded, in a single-test file.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
    }
    let device = WgpuDevice::default();
    match init_wgpu_blocking(&device, tasks_max) {
        Ok(setup) => {
            let info = setup.adapter.get_info();
            let sizes = (info.subgroup_min_size, info.subgroup_max_size);
            Some((device, GpuFeatures::of_wgpu(setup.device.features(), sizes)))
        }
        Err(e) if std::env::var("HEARTH_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED: no wgpu adapter ({e}); HEARTH_SKIP_GPU=1");
            None
        }
        Err(e) => panic!("no wgpu adapter: {e} (set HEARTH_SKIP_GPU=1 to skip)"),
    }
}
