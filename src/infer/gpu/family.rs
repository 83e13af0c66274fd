//! The kernel families of the GPU backend: which matmul kernels it launches (see the module
//! docs of [`super`]), chosen from the adapter or forced for testing.

use std::sync::atomic::Ordering;

use super::{Gpu, u32_of};
use crate::infer::InferError;

/// The matmul kernel families (for tests and benchmarks; [`Kernels::Auto`] is the adapter's
/// own choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// `Rows` on a CPU adapter, `Portable` on a GPU.
    #[default]
    Auto,
    /// Workgroup reductions in shared memory (`Matvec` for one row, `Tiled` for several).
    Portable,
    /// The barrier-free `Rows` kernels.
    Rows,
}

impl Kernels {
    /// The family named `name` (`auto`, `portable`, `rows`).
    ///
    /// # Errors
    /// [`InferError::InvalidInput`] naming the families there are.
    pub fn parse(name: &str) -> Result<Kernels, InferError> {
        match name {
            "auto" => Ok(Kernels::Auto),
            "portable" => Ok(Kernels::Portable),
            "rows" => Ok(Kernels::Rows),
            other => {
                Err(InferError::invalid("kernels", format!("kernels '{other}': expected 'auto', 'portable' or 'rows'")))
            }
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
            Some((8, 1))
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
    pub fn set_kernels(&self, kernels: Kernels) {
        let rows = match kernels {
            Kernels::Auto => self.cpu,
            Kernels::Portable => false,
            Kernels::Rows => true,
        };
        self.row_kernels.store(rows, Ordering::Relaxed);
    }

    /// The kernel family in use: [`Kernels::Rows`] or [`Kernels::Portable`].
    pub fn kernels(&self) -> Kernels {
        if self.row_kernels() { Kernels::Rows } else { Kernels::Portable }
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
