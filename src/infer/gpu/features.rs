//! What the device offers beyond core WebGPU that the kernel families use: `subgroups` (the
//! `Subgroup` family's reductions) and `shader-f16`. The device is created with every feature
//! its adapter has (burn's wgpu setup asks for all of them); these are read from it and passed to
//! [`super::Gpu::with_features`], and only the WGSL of a family that uses one enables it.

use crate::backend::wgpu;
use serde::Serialize;

/// The subgroup sizes a device may run a kernel with (WebGPU's `subgroupMinSize` /
/// `subgroupMaxSize`): powers of two, `min_size <= max_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubgroupSizes {
    pub min_size: u32,
    pub max_size: u32,
}

/// The optional features of a device that the kernels may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuFeatures {
    /// `subgroups` (wgpu `Features::SUBGROUP`) and the sizes subgroups may have; `None` without it.
    pub subgroups: Option<SubgroupSizes>,
    /// `shader-f16` (wgpu `Features::SHADER_F16`).
    pub shader_f16: bool,
}

/// Most rows one workgroup of the subgroup kernels computes.
const MAX_SUBGROUP_ROWS: u32 = 32;

impl GpuFeatures {
    /// No optional feature (the portable and row families only).
    pub const NONE: GpuFeatures = GpuFeatures { subgroups: None, shader_f16: false };

    /// The features of a wgpu device (`features`: the device's; `(min, max)`: its adapter's
    /// subgroup sizes, `wgpu::AdapterInfo::subgroup_min_size` / `subgroup_max_size`). Sizes
    /// that are not powers of two up to 128 (a driver that reports none) read as 4 to 128,
    /// every size WebGPU allows.
    pub fn of_wgpu(features: wgpu::Features, (min, max): (u32, u32)) -> GpuFeatures {
        let valid = |s: u32| s.is_power_of_two() && s <= 128;
        let subgroups = features.contains(wgpu::Features::SUBGROUP).then(|| {
            if valid(min) && valid(max) && min <= max {
                SubgroupSizes { min_size: min, max_size: max }
            } else {
                SubgroupSizes { min_size: 4, max_size: 128 }
            }
        });
        GpuFeatures { subgroups, shader_f16: features.contains(wgpu::Features::SHADER_F16) }
    }

    /// Rows per workgroup of the subgroup kernels: one per subgroup of the smallest size the
    /// workgroup of `workgroup` invocations may be split into (larger subgroups take several
    /// rows each), at most [`MAX_SUBGROUP_ROWS`]. `None` without subgroups.
    pub fn subgroup_rows(&self, workgroup: u32) -> Option<u32> {
        self.subgroups.map(|s| (workgroup / s.min_size).clamp(1, MAX_SUBGROUP_ROWS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(min: u32, max: u32) -> (u32, u32) {
        (min, max)
    }

    #[test]
    fn features_and_sizes_come_from_the_device_and_the_adapter() {
        let both = wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16;
        let f = GpuFeatures::of_wgpu(both, info(8, 8));
        assert_eq!(f.subgroups, Some(SubgroupSizes { min_size: 8, max_size: 8 }));
        assert!(f.shader_f16);
        assert_eq!(f.subgroup_rows(128), Some(16));
        let none = GpuFeatures::of_wgpu(wgpu::Features::empty(), info(32, 32));
        assert_eq!(none, GpuFeatures::NONE);
        assert_eq!(none.subgroup_rows(128), None);
        // Nonsense sizes read as every size WebGPU allows.
        let odd = GpuFeatures::of_wgpu(wgpu::Features::SUBGROUP, info(0, 3));
        assert_eq!(odd.subgroups, Some(SubgroupSizes { min_size: 4, max_size: 128 }));
        assert_eq!(odd.subgroup_rows(128), Some(32));
        assert_eq!(GpuFeatures::of_wgpu(wgpu::Features::SUBGROUP, info(64, 128)).subgroup_rows(128), Some(2));
        assert_eq!(GpuFeatures::of_wgpu(wgpu::Features::SUBGROUP, info(128, 128)).subgroup_rows(64), Some(1));
    }
}
