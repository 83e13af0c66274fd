//! The kernel families of the GPU backend: which matmul kernels it launches (see the module
//! docs of [`super`]), chosen from the adapter or forced for testing.

use std::sync::atomic::Ordering;

use super::kernel::SUBGROUP_WORKGROUP;
use super::{Gpu, GpuFeatures, u32_of};
use crate::infer::InferError;

/// The matmul kernel families (for tests and benchmarks; [`Kernels::Auto`] is the adapter's
/// own choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// `Rows` on a CPU adapter; on a GPU `Subgroup` where the device has `subgroups`, else
    /// `Portable`.
    #[default]
    Auto,
    /// Subgroup reductions for one row of `x` (`SgMatvec` and the fused weight kernels: one
    /// subgroup per weight row, several rows per workgroup); `Tiled` for several rows. Needs
    /// the `subgroups` feature.
    Subgroup,
    /// Workgroup reductions in shared memory (`Matvec` for one row, `Tiled` for several).
    Portable,
    /// The barrier-free `Rows` kernels.
    Rows,
    /// `Subgroup` where the device has it, else `Portable`, with several rows of `x` (a
    /// prefill) multiplied through f16 tiles of the quantized weights' unscaled values (exact in
    /// f16: half the shared memory of the f32 tiles), the arithmetic in f32
    /// (`shaders/tiled_f16.wgsl`). Needs the `shader-f16` feature. Never the adapter's own
    /// choice: forced only, until a GPU shows where it pays (the device bench runs it).
    F16,
}

impl Kernels {
    /// The family named `name` (`auto`, `subgroup`, `portable`, `rows`, `f16`).
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] naming the families there are.
    pub fn parse(name: &str) -> Result<Kernels, InferError> {
        match name {
            "auto" => Ok(Kernels::Auto),
            "subgroup" => Ok(Kernels::Subgroup),
            "portable" => Ok(Kernels::Portable),
            "rows" => Ok(Kernels::Rows),
            "f16" => Ok(Kernels::F16),
            other => Err(InferError::invalid(
                "kernels",
                format!("kernels '{other}': expected 'auto', 'subgroup', 'portable', 'rows' or 'f16'"),
            )),
        }
    }
}

impl Gpu {
    /// The blocking `(rb, xb)` of [`Spec::Rows`] for a matmul of `n` rows, or `None` for the
    /// shared-memory kernels (see the module docs).
    pub(super) fn rows_blocking(&self, n: usize) -> Option<(u32, u32)> {
        if !self.row_kernels.load(Ordering::Relaxed) {
            None
        } else if n == 1 {
            Some((4, 1))
        } else {
            Some((4, u32_of(n.min(4))))
        }
    }

    /// Whether `matmul` uses the barrier-free [`Spec::Rows`] kernel (the default on CPU
    /// adapters) rather than the shared-memory ones (the default on GPUs). For tests and
    /// profiling: both are correct everywhere.
    pub fn use_row_kernels(&self, on: bool) {
        self.row_kernels.store(on, Ordering::Relaxed);
    }

    /// Forces a kernel family ([`Kernels::Auto`]: the adapter's own, see the module docs).
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] naming the feature when the device lacks one the family
    /// needs (`subgroups` for [`Kernels::Subgroup`]); the family in use is then unchanged.
    pub fn set_kernels(&self, kernels: Kernels) -> Result<(), InferError> {
        let subgroups = self.features.subgroups.is_some();
        let adapter = self.adapter_name();
        let lacks = |family: &str, feature: &str| {
            InferError::invalid(
                "kernels",
                format!(
                    "kernels '{family}' needs the '{feature}' feature, which {adapter} lacks ('auto' picks a family it has)"
                ),
            )
        };
        let (rows, subgroup, half) = match kernels {
            Kernels::Auto => (self.cpu, !self.cpu && subgroups, false),
            Kernels::Subgroup if !subgroups => return Err(lacks("subgroup", "subgroups")),
            Kernels::Subgroup => (false, true, false),
            Kernels::Portable => (false, false, false),
            Kernels::Rows => (true, false, false),
            Kernels::F16 if !self.features.shader_f16 => return Err(lacks("f16", "shader-f16")),
            Kernels::F16 => (false, subgroups, true),
        };
        self.row_kernels.store(rows, Ordering::Relaxed);
        self.subgroup_kernels.store(subgroup, Ordering::Relaxed);
        self.half_tiles.store(half, Ordering::Relaxed);
        Ok(())
    }

    /// The kernel family in use: [`Kernels::Rows`], [`Kernels::Subgroup`],
    /// [`Kernels::Portable`] or [`Kernels::F16`].
    pub fn kernels(&self) -> Kernels {
        if self.half_tiles.load(Ordering::Relaxed) {
            Kernels::F16
        } else if self.row_kernels() {
            Kernels::Rows
        } else if self.subgroup_kernels.load(Ordering::Relaxed) {
            Kernels::Subgroup
        } else {
            Kernels::Portable
        }
    }

    /// The adapter's name for messages ("this adapter" where the browser gives none).
    pub(super) fn adapter_name(&self) -> &str {
        if self.name.is_empty() { "this adapter" } else { &self.name }
    }

    /// The optional device features this backend was given.
    pub fn features(&self) -> GpuFeatures {
        self.features
    }

    /// Rows per workgroup of the subgroup kernels, `None` without the feature.
    pub(super) fn subgroup_rows(&self) -> Option<u32> {
        self.features.subgroup_rows(SUBGROUP_WORKGROUP)
    }

    /// Rows per workgroup of `Spec::SgMatvec` for a matmul of `n` rows of `x`, or `None`
    /// where the subgroup family does not apply (another family, or `n > 1`: `Tiled`).
    pub(super) fn subgroup_matvec_rows(&self, n: usize) -> Option<u32> {
        if n == 1 && self.subgroup_kernels.load(Ordering::Relaxed) { self.subgroup_rows() } else { None }
    }

    /// Whether [`Spec::Tiled`] takes f16 tiles ([`Kernels::F16`]).
    pub(super) fn half_tiles(&self) -> bool {
        self.half_tiles.load(Ordering::Relaxed)
    }

    /// Dispatches this backend has recorded since it was created (every kernel launch, the
    /// fused ones included): what a decoded token costs, by difference.
    pub fn launches(&self) -> u64 {
        self.launches.load(Ordering::Relaxed)
    }

    /// Whether `matmul` uses the barrier-free kernel (see [`Gpu::use_row_kernels`]).
    pub fn row_kernels(&self) -> bool {
        self.row_kernels.load(Ordering::Relaxed)
    }
}

/// Whether the adapter runs shaders on the CPU (SwiftShader, llvmpipe/lavapipe, WARP): no card
/// behind it (natively; and in the browser when it says it is a fallback adapter), or a name that
/// says so.
pub(super) fn cpu_adapter(no_card: bool, name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    no_card
        || ["swiftshader", "llvmpipe", "lavapipe", "softpipe", "software", "basic render"]
            .iter()
            .any(|s| name.contains(s))
}
