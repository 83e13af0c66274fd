#![cfg(not(target_arch = "wasm32"))] // native wgpu; the browser tier runs the same kernels on WebGPU
//! The GPU backend ([`hearth::infer::gpu::Gpu`]) against naive f64 references, op by op, on the
//! native wgpu adapter (Mesa lavapipe in CI: a CPU Vulkan driver).
//!
//! Weights are random but valid GGUF blocks, decoded for the reference with
//! [`hearth::gguf::dequantize_to_vec`] (bit-exact with gguf-py). No adapter fails every test
//! unless `HEARTH_SKIP_GPU=1`, which skips them with a message instead.
//!
//! burn initialises one wgpu device per process, so every test shares [`device`], one test at
//! a time ([`serial`]).

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use futures::executor::block_on;
use hearth::backend::{WgpuDevice, init_wgpu_blocking};
use hearth::gguf::{GgmlType, dequantize_to_vec};
use hearth::infer::gpu::{Flash, Gpu, GpuFeatures, Kernels};
use hearth::infer::{Activation, Attention, Compute, HeadNorms, InferError, KvCache, Rope};
use hearth::model::RopeStyle;

static DEVICE: OnceLock<Result<(WgpuDevice, GpuFeatures), String>> = OnceLock::new();

/// The shared wgpu device, or `None` (after a message) when there is none and
/// `HEARTH_SKIP_GPU=1`.
fn device() -> Option<WgpuDevice> {
    device_and_features().map(|(d, _)| d)
}

/// [`device`] and the optional features it has.
fn device_and_features() -> Option<(WgpuDevice, GpuFeatures)> {
    let device = DEVICE.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            let dir = std::env::temp_dir().join("hearth-xdg");
            let _ = std::fs::create_dir_all(&dir);
            // SAFETY: set once, before the driver (the only reader) is loaded.
            unsafe { std::env::set_var("XDG_RUNTIME_DIR", dir) };
        }
        let device = WgpuDevice::default();
        let setup = init_wgpu_blocking(&device, None).map_err(|e| e.to_string())?;
        let info = setup.adapter.get_info();
        let features = GpuFeatures::of_wgpu(setup.device.features(), (info.subgroup_min_size, info.subgroup_max_size));
        Ok((device, features))
    });
    match device {
        Ok(d) => Some(d.clone()),
        Err(e) if std::env::var("HEARTH_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("SKIPPED GPU backend test: no wgpu adapter ({e}); HEARTH_SKIP_GPU=1");
            None
        }
        Err(e) => panic!("no wgpu adapter: {e} (set HEARTH_SKIP_GPU=1 to skip the GPU tests)"),
    }
}

/// One test at a time on the device: `resident_bytes` is device-wide, and lavapipe has only
/// the machine's cores to share anyway.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The backend on the shared device, holding the [`serial`] lock.
struct TestGpu {
    gpu: Gpu,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for TestGpu {
    type Target = Gpu;
    fn deref(&self) -> &Gpu {
        &self.gpu
    }
}

fn gpu() -> Option<TestGpu> {
    let serial = serial();
    device_and_features()
        .map(|(d, f)| TestGpu { gpu: Gpu::with_features(d, f, u64::MAX).expect("a wgpu device"), _serial: serial })
}

// ---------------------------------------------------------------------------------------------
// Random data

/// The crate's generator, with the random GGUF blocks these tests need.
struct Rng(hearth::rng::Rng);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(hearth::rng::Rng::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn byte(&mut self) -> u8 {
        self.0.byte()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        self.0.signed_f32()
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        self.0.signed_f32s(n)
    }
    /// f16 bits of magnitude 2^(lo-15)..2^(hi-15), random sign; now and then a subnormal.
    fn half(&mut self, lo: u16, hi: u16, signed: bool) -> [u8; 2] {
        let sign = if signed && self.byte() & 1 == 1 { 0x8000 } else { 0 };
        let man = (self.next() >> 54) as u16 & 0x3ff;
        let exp = if self.below(20) == 0 { 0 } else { lo + self.below(usize::from(hi - lo)) as u16 };
        (sign | (exp << 10) | man).to_le_bytes()
    }
}

/// `rows * cols` values of `ty` as valid random GGUF bytes.
fn random_weight(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let blocks = rows * cols / ty.block_size();
    let mut out = Vec::with_capacity(blocks * ty.type_size());
    for _ in 0..blocks {
        match ty {
            GgmlType::F32 => out.extend_from_slice(&rng.f().to_le_bytes()),
            GgmlType::F16 => out.extend_from_slice(&rng.half(10, 16, true)),
            GgmlType::Q4_0 => {
                out.extend_from_slice(&rng.half(5, 12, true));
                (0..16).for_each(|_| out.push(rng.byte()));
            }
            GgmlType::Q4_1 => {
                out.extend_from_slice(&rng.half(5, 12, true));
                out.extend_from_slice(&rng.half(5, 12, true));
                (0..16).for_each(|_| out.push(rng.byte()));
            }
            GgmlType::Q5_0 => {
                out.extend_from_slice(&rng.half(5, 12, true));
                (0..20).for_each(|_| out.push(rng.byte()));
            }
            GgmlType::Q8_0 => {
                out.extend_from_slice(&rng.half(3, 10, true));
                (0..32).for_each(|_| out.push(rng.byte()));
            }
            GgmlType::Q4_K => {
                out.extend_from_slice(&rng.half(3, 9, false));
                out.extend_from_slice(&rng.half(3, 9, false));
                (0..12 + 128).for_each(|_| out.push(rng.byte()));
            }
            GgmlType::Q6_K => {
                (0..128 + 64 + 16).for_each(|_| out.push(rng.byte()));
                out.extend_from_slice(&rng.half(1, 7, true));
            }
            other => panic!("no generator for {other}"),
        }
    }
    out
}

const FORMATS: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
];

// ---------------------------------------------------------------------------------------------
// Comparison

/// Fails unless every `got[i]` is within `tol * (|want[i]| + rms(want))` of `want[i]`.
#[track_caller]
fn assert_close(what: &str, got: &[f32], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let rms = (want.iter().map(|w| w * w).sum::<f64>() / want.len().max(1) as f64).sqrt();
    let mut worst = (0.0f64, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(*g) - w).abs() / (w.abs() + rms + 1e-30);
        if err.is_nan() || err > worst.0 {
            worst = (if err.is_nan() { f64::INFINITY } else { err }, i);
        }
    }
    assert!(
        worst.0 <= tol,
        "{what}: element {} is {} but should be {} (relative error {:.3e} > {tol:e})",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

fn read(g: &Gpu, b: &<Gpu as Compute>::Buf, off: usize, len: usize) -> Vec<f32> {
    block_on(g.read(b, off, len)).expect("read")
}

fn upload(g: &Gpu, data: &[f32]) -> <Gpu as Compute>::Buf {
    g.upload_f32(data).unwrap()
}

fn ref_matmul(x: &[f32], w: &[f32], n: usize, rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * rows];
    for i in 0..n {
        for r in 0..rows {
            out[i * rows + r] = (0..cols).map(|c| f64::from(x[i * cols + c]) * f64::from(w[r * cols + c])).sum();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn construction_on_the_wgpu_device() {
    let Some(g) = gpu() else { return };
    eprintln!("{} (max binding {} bytes)", g.describe(), g.max_binding_bytes());
    assert!(g.max_binding_bytes() >= 1 << 20);
}

#[test]
fn unsupported_types_are_refused() {
    let Some(g) = gpu() else { return };
    for ty in [GgmlType::Q5_1, GgmlType::Q2_K, GgmlType::BF16, GgmlType::Q5_K] {
        let bytes = vec![0u8; ty.byte_size(256 * 2).unwrap() as usize];
        let err = g.upload_weight("blk.0.w", ty, 2, 256, &bytes).unwrap_err();
        assert_eq!(err, InferError::UnsupportedType { tensor: "blk.0.w".into(), ty });
    }
    // A wrong byte count is an error, not a panic.
    assert!(g.upload_weight("w", GgmlType::Q8_0, 2, 64, &[0; 10]).is_err());
}

#[test]
fn a_family_needs_its_feature_and_auto_picks_by_adapter() {
    let Some((device, features)) = device_and_features() else { return };
    let _serial = serial();
    let bare = Gpu::with_features(device.clone(), GpuFeatures::NONE, u64::MAX).unwrap();
    let before = bare.kernels();
    let err = bare.set_kernels(Kernels::Subgroup).unwrap_err();
    assert!(matches!(err, InferError::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("'subgroups'"), "{err}");
    assert_eq!(bare.kernels(), before, "a refused family changes nothing");
    let err = bare.set_kernels(Kernels::F16).unwrap_err();
    assert!(matches!(err, InferError::InvalidInput { .. }) && err.to_string().contains("'shader-f16'"), "{err}");
    assert_eq!(bare.kernels(), before, "a refused family changes nothing");
    for k in [Kernels::Portable, Kernels::Rows] {
        bare.set_kernels(k).unwrap();
        assert_eq!(bare.kernels(), k);
    }
    // Auto: rows on a CPU adapter (lavapipe here), else subgroup where the device has it.
    let g = Gpu::with_features(device, features, u64::MAX).unwrap();
    g.set_kernels(Kernels::Auto).unwrap();
    let name = g.describe().to_lowercase();
    let want = if ["llvmpipe", "lavapipe", "swiftshader"].iter().any(|s| name.contains(s)) {
        Kernels::Rows
    } else if features.subgroups.is_some() {
        Kernels::Subgroup
    } else {
        Kernels::Portable
    };
    assert_eq!(g.kernels(), want, "{name}");
    // The f16 family wherever the device has shader-f16 (lavapipe does), never by itself.
    if features.shader_f16 {
        g.set_kernels(Kernels::F16).unwrap();
        assert_eq!(g.kernels(), Kernels::F16);
        g.set_kernels(Kernels::Auto).unwrap();
        assert_eq!(g.kernels(), want);
    }
    eprintln!("{}: auto picks {:?} with {features:?}", g.describe(), g.kernels());
}

#[test]
fn matmul_every_format_and_shape() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    let mut ratios = Vec::new();
    for ty in FORMATS {
        let shapes: &[(usize, usize)] = match ty.block_size() {
            256 => &[(70, 256), (129, 768), (33, 1024)],
            32 => &[(70, 96), (131, 320), (40, 1280)],
            // Plain types: rows that end mid-unit (cols % 8 != 0) as well.
            _ => &[(70, 96), (33, 37), (65, 100)],
        };
        for &(rows, cols) in shapes {
            let bytes = random_weight(&mut rng, ty, rows, cols);
            let wf = dequantize_to_vec(ty, &bytes, rows * cols).unwrap();
            let w = g.upload_weight("w", ty, rows, cols, &bytes).unwrap();
            ratios.push((ty, g.weight_bytes(&w) as f64 / bytes.len() as f64));
            assert!(g.weight_bytes(&w) as f64 <= 1.25 * bytes.len() as f64 + 4.0);
            for n in [1, 3, 17, 70] {
                let x = rng.vec(n * cols);
                let xb = upload(&g, &x);
                let want = ref_matmul(&x, &wf, n, rows, cols);
                // Every kernel family the device has: barrier-free rows (CPU adapters), shared
                // memory and subgroup reductions (GPUs).
                let default = g.kernels();
                for kernels in [Kernels::Portable, Kernels::Rows, Kernels::Subgroup, Kernels::F16] {
                    if g.set_kernels(kernels).is_err() {
                        continue;
                    }
                    let out = g.alloc(n * rows).unwrap();
                    g.matmul(&xb, &w, n, &out);
                    let got = read(&g, &out, 0, n * rows);
                    let name = format!("{ty} {rows}x{cols} n={n} {kernels:?}");
                    assert_close(&name, &got, &want, 1e-4);
                }
                g.set_kernels(default).unwrap();
            }
        }
    }
    for (ty, r) in ratios {
        eprintln!("device/GGUF bytes {ty}: {r:.4}");
    }
}

#[test]
fn embed_every_format() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(77);
    for ty in FORMATS {
        let (rows, cols) = match ty.block_size() {
            256 => (37, 512),
            32 => (37, 96),
            _ => (37, 44),
        };
        let bytes = random_weight(&mut rng, ty, rows, cols);
        let wf = dequantize_to_vec(ty, &bytes, rows * cols).unwrap();
        let w = g.upload_weight("tok", ty, rows, cols, &bytes).unwrap();
        let ids: Vec<u32> = vec![3, 0, 36, 3, 17];
        let idb = g.alloc_ids(8).unwrap();
        g.write_ids(&idb, &ids).unwrap();
        let out = g.alloc(ids.len() * cols).unwrap();
        g.embed(&w, &idb, ids.len(), 1.5, &out);
        let got = read(&g, &out, 0, ids.len() * cols);
        let want: Vec<f64> =
            ids.iter().flat_map(|&id| wf[id as usize * cols..][..cols].iter().map(|v| f64::from(1.5 * v))).collect();
        assert_close(&format!("embed {ty}"), &got, &want, 1e-6);
    }
}

#[test]
fn split_weights_match_unsplit() {
    let _serial = serial();
    let Some(dev) = device() else { return };
    let whole = Gpu::new(dev.clone()).unwrap();
    let mut rng = Rng::new(99);
    for (ty, rows, cols) in [(GgmlType::Q8_0, 300, 64), (GgmlType::Q6_K, 77, 512), (GgmlType::F16, 51, 36)] {
        let bytes = random_weight(&mut rng, ty, rows, cols);
        let limit = bytes.len() as u64 / 5;
        let split = Gpu::with_max_binding(dev.clone(), limit).unwrap();
        assert_eq!(split.max_binding_bytes(), limit);
        let a = whole.upload_weight("w", ty, rows, cols, &bytes).unwrap();
        let b = split.upload_weight("w", ty, rows, cols, &bytes).unwrap();
        assert_eq!(a.parts(), 1);
        assert!(b.parts() >= 5, "{ty}: {} parts", b.parts());
        for n in [1, 5, 40] {
            let x = rng.vec(n * cols);
            let xb = upload(&whole, &x);
            let (oa, ob) = (whole.alloc(n * rows).unwrap(), whole.alloc(n * rows).unwrap());
            whole.matmul(&xb, &a, n, &oa);
            split.matmul(&xb, &b, n, &ob);
            assert_eq!(read(&whole, &oa, 0, n * rows), read(&whole, &ob, 0, n * rows), "{ty} n={n}");
        }
        let ids = whole.alloc_ids(4).unwrap();
        whole.write_ids(&ids, &[0, rows as u32 - 1, rows as u32 / 2, 1]).unwrap();
        let (ea, eb) = (whole.alloc(4 * cols).unwrap(), whole.alloc(4 * cols).unwrap());
        whole.embed(&a, &ids, 4, 1.0, &ea);
        split.embed(&b, &ids, 4, 1.0, &eb);
        assert_eq!(read(&whole, &ea, 0, 4 * cols), read(&whole, &eb, 0, 4 * cols), "embed {ty}");
    }
}

/// A decode step's matmul by a weight in two or three buffers (an output projection over the
/// binding limit) is one dispatch in every family, and computes what the whole weight does.
#[test]
fn weights_in_two_or_three_parts_take_one_dispatch() {
    let _serial = serial();
    let Some(dev) = device() else { return };
    let whole = Gpu::new(dev.clone()).unwrap();
    let mut rng = Rng::new(7);
    for (ty, rows, cols, parts) in [
        (GgmlType::Q8_0, 300, 64, 2),
        (GgmlType::Q6_K, 77, 512, 3),
        (GgmlType::Q4_1, 130, 96, 2),
        (GgmlType::F16, 90, 64, 3),
    ] {
        let bytes = random_weight(&mut rng, ty, rows, cols);
        // The smallest binding limit (in steps of 1/64 of the weight) that splits it in `parts`.
        let (split, b) = (64 / parts..)
            .map(|k| {
                let g = Gpu::with_max_binding(dev.clone(), bytes.len() as u64 * k / 64).unwrap();
                let w = g.upload_weight("w", ty, rows, cols, &bytes).unwrap();
                (g, w)
            })
            .find(|(_, w)| w.parts() as u64 <= parts)
            .unwrap();
        assert_eq!(b.parts() as u64, parts, "{ty}");
        let a = whole.upload_weight("w", ty, rows, cols, &bytes).unwrap();
        let x = rng.vec(cols);
        let xb = upload(&whole, &x);
        let oa = whole.alloc(rows).unwrap();
        whole.matmul(&xb, &a, 1, &oa);
        let want: Vec<f64> = read(&whole, &oa, 0, rows).into_iter().map(f64::from).collect();
        for kernels in [Kernels::Rows, Kernels::Portable, Kernels::Subgroup] {
            if split.set_kernels(kernels).is_err() {
                continue;
            }
            let ob = whole.alloc(rows).unwrap();
            let before = split.launches();
            split.matmul(&xb, &b, 1, &ob);
            assert_eq!(split.launches() - before, 1, "{ty} {kernels:?}");
            assert_close(&format!("{ty} in {parts} parts {kernels:?}"), &read(&whole, &ob, 0, rows), &want, 1e-5);
        }
        // The embedding and the norm after it: one dispatch too, ids in every part.
        let ids = whole.alloc_ids(5).unwrap();
        whole.write_ids(&ids, &[0, rows as u32 - 1, rows as u32 / 2, 1, rows as u32 / 3]).unwrap();
        let g = upload(&whole, &rng.vec(cols));
        let run = |gpu: &Gpu, w| {
            let (x, xn) = (whole.alloc(5 * cols).unwrap(), whole.alloc(5 * cols).unwrap());
            let before = gpu.launches();
            gpu.embed_norm(w, &ids, 5, 0.5, &x, &g, cols, 1e-6, &xn);
            (gpu.launches() - before, read(&whole, &x, 0, 5 * cols), read(&whole, &xn, 0, 5 * cols))
        };
        let (la, xa, na) = run(&whole, &a);
        let (lb, xb, nb) = run(&split, &b);
        assert_eq!((la, lb), (1, 1), "embed_norm {ty}");
        assert_eq!(xa, xb, "embed {ty} in {parts} parts");
        assert_close(
            &format!("embed_norm {ty} in {parts} parts"),
            &nb,
            &na.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            1e-6,
        );
    }
}

#[test]
fn rms_norm_also_in_place() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(5);
    for (rows, dim) in [(1, 640), (7, 1000), (3, 33)] {
        let x = rng.vec(rows * dim);
        let w = rng.vec(dim);
        let want: Vec<f64> = (0..rows)
            .flat_map(|i| {
                let row = &x[i * dim..][..dim];
                let ms = row.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / dim as f64;
                let inv = 1.0 / (ms + 1e-6).sqrt();
                row.iter().zip(&w).map(move |(v, w)| f64::from(*v) * inv * f64::from(*w)).collect::<Vec<_>>()
            })
            .collect();
        let (xb, wb, out) = (upload(&g, &x), upload(&g, &w), g.alloc(rows * dim).unwrap());
        g.rms_norm(&xb, &wb, rows, dim, 1e-6, &out);
        assert_close("rms_norm", &read(&g, &out, 0, rows * dim), &want, 1e-5);
        g.rms_norm(&xb, &wb, rows, dim, 1e-6, &xb);
        assert_close("rms_norm in place", &read(&g, &xb, 0, rows * dim), &want, 1e-5);
    }
}

#[test]
fn elementwise_ops() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(11);
    let (n, dim) = (5, 301);
    let len = n * dim;
    let x: Vec<f32> = rng.vec(len).iter().map(|v| v * 8.0).collect();
    let y = rng.vec(len);
    let b = rng.vec(dim);

    let xb = upload(&g, &x);
    g.add_bias(&xb, &upload(&g, &b), n, dim);
    let want: Vec<f64> = (0..len).map(|e| f64::from(x[e]) + f64::from(b[e % dim])).collect();
    assert_close("add_bias", &read(&g, &xb, 0, len), &want, 1e-6);

    let xb = upload(&g, &x);
    g.add(&xb, &upload(&g, &y), len - 3);
    let mut want: Vec<f64> = x.iter().zip(&y).map(|(a, b)| f64::from(*a) + f64::from(*b)).collect();
    (len - 3..len).for_each(|e| want[e] = f64::from(x[e]));
    assert_close("add (prefix)", &read(&g, &xb, 0, len), &want, 1e-6);

    let xb = upload(&g, &x);
    g.softcap(&xb, len, 3.0);
    let want: Vec<f64> = x.iter().map(|v| 3.0 * (f64::from(*v) / 3.0).tanh()).collect();
    assert_close("softcap", &read(&g, &xb, 0, len), &want, 1e-5);

    for act in [Activation::Silu, Activation::GeluTanh] {
        let out = g.alloc(len).unwrap();
        g.glu(&upload(&g, &x), &upload(&g, &y), len, act, &out);
        let want: Vec<f64> = x
            .iter()
            .zip(&y)
            .map(|(gt, u)| {
                let gt = f64::from(*gt);
                let a = match act {
                    Activation::Silu => gt / (1.0 + (-gt).exp()),
                    Activation::GeluTanh => {
                        0.5 * gt * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (gt + 0.044715 * gt.powi(3))).tanh())
                    }
                };
                a * f64::from(*u)
            })
            .collect();
        assert_close(&format!("glu {act:?}"), &read(&g, &out, 0, len), &want, 1e-5);
    }

    // copy_rows / store_rows
    let src = upload(&g, &x);
    let cache = g.alloc(20 * dim).unwrap();
    g.store_rows(&src, 3, dim, 7, &cache);
    g.copy_rows(&src, 4, &cache, 15, 1, dim);
    let got = read(&g, &cache, 0, 20 * dim);
    let mut want = vec![0.0f64; 20 * dim];
    (0..3 * dim).for_each(|e| want[7 * dim + e] = f64::from(x[e]));
    (0..dim).for_each(|e| want[15 * dim + e] = f64::from(x[4 * dim + e]));
    assert_close("store_rows/copy_rows", &got, &want, 0.0);
}

fn ref_rope(x: &[f32], n: usize, r: Rope<'_>) -> Vec<f64> {
    let mut out: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
    let (hd, half) = (r.head_dim as usize, r.n_rot as usize / 2);
    for i in 0..n {
        let pos = f64::from(r.pos0) + i as f64;
        for h in 0..r.n_heads as usize {
            let base = (i * r.n_heads as usize + h) * hd;
            for k in 0..half {
                let theta =
                    pos * f64::from(r.freq_scale) * f64::from(r.base).powf(-2.0 * k as f64 / f64::from(r.n_rot))
                        / r.factors.map_or(1.0, |f| f64::from(f[k]));
                let (i0, i1) = match r.style {
                    RopeStyle::Normal => (base + 2 * k, base + 2 * k + 1),
                    RopeStyle::Neox => (base + k, base + k + half),
                };
                let (x0, x1) = (f64::from(x[i0]), f64::from(x[i1]));
                out[i0] = x0 * theta.cos() - x1 * theta.sin();
                out[i1] = x0 * theta.sin() + x1 * theta.cos();
            }
        }
    }
    out
}

/// Llama 3.1+ frequency factors (`rope_freqs.weight`): each pair's angle divided by its factor.
#[test]
fn rope_with_frequency_factors() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(23);
    // What convert_hf_to_gguf.py writes for Llama 3.2 (head_dim 64, base 5e5): 1, blends, 32.
    let factors: Vec<f32> = (0..32)
        .map(|k| {
            if k < 12 {
                1.0
            } else if k < 20 {
                1.0 + 3.9 * (k - 11) as f32
            } else {
                32.0
            }
        })
        .collect();
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let (n, n_heads, head_dim) = (5, 2, 64);
        let r = Rope {
            n_heads,
            head_dim,
            n_rot: 64,
            pos0: 1000,
            base: 500_000.0,
            freq_scale: 1.0,
            style,
            factors: Some(&factors),
        };
        let x = rng.vec(n * (n_heads * head_dim) as usize);
        let xb = upload(&g, &x);
        g.rope(&xb, n, r);
        let got = read(&g, &xb, 0, x.len());
        assert_close(&format!("rope with factors {style:?}"), &got, &ref_rope(&x, n, r), 1e-4);
        // The CPU backend agrees too, and the factors matter.
        let cpu = hearth::infer::Cpu::new();
        let cb = cpu.upload_f32(&x).unwrap();
        cpu.rope(&cb, n, r);
        let cpu_out = block_on(cpu.read(&cb, 0, x.len())).unwrap();
        assert_close("cpu rope with factors", &cpu_out, &ref_rope(&x, n, r), 1e-4);
        let plain = ref_rope(&x, n, Rope { factors: None, ..r });
        assert!(plain.iter().zip(&got).any(|(a, b)| (a - f64::from(*b)).abs() > 1e-2), "factors changed nothing");
    }
}

#[test]
fn rope_normal_and_neox() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(21);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for (n_rot, head_dim, pos0, freq_scale) in [(64, 64, 0, 1.0), (32, 64, 37, 0.5), (128, 128, 90, 1.0)] {
            let (n, n_heads) = (6, 3);
            let r = Rope { n_heads, head_dim, n_rot, pos0, base: 10000.0, freq_scale, style, factors: None };
            let x = rng.vec(n * (n_heads * head_dim) as usize);
            let xb = upload(&g, &x);
            g.rope(&xb, n, r);
            assert_close(&format!("rope {r:?}"), &read(&g, &xb, 0, x.len()), &ref_rope(&x, n, r), 1e-4);
        }
    }
}

fn ref_attention(q: &[f32], k: &[f32], v: &[f32], n: usize, a: Attention) -> Vec<f64> {
    let (nh, hd) = (a.n_head as usize, a.head_dim as usize);
    let kvw = a.n_head_kv as usize * hd;
    let mut out = vec![0.0; n * nh * hd];
    for i in 0..n {
        let p = a.pos0 as usize + i;
        let lo = if a.window > 0 { (p + 1).saturating_sub(a.window as usize) } else { 0 };
        for h in 0..nh {
            let kvh = h / (nh / a.n_head_kv as usize);
            let qv = &q[(i * nh + h) * hd..][..hd];
            let scores: Vec<f64> = (lo..=p)
                .map(|t| {
                    let kr = &k[t * kvw + kvh * hd..][..hd];
                    qv.iter().zip(kr).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum::<f64>() * f64::from(a.scale)
                })
                .collect();
            let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f64 = e.iter().sum();
            for d in 0..hd {
                out[(i * nh + h) * hd + d] =
                    (lo..=p).zip(&e).map(|(t, w)| w * f64::from(v[t * kvw + kvh * hd + d])).sum::<f64>() / sum;
            }
        }
    }
    out
}

#[test]
fn attention_gqa_window_and_long_context() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(31);
    let cases = [
        // (n, n_head, n_head_kv, head_dim, pos0, window)
        (5, 8, 2, 64, 0, 0),
        (4, 4, 4, 32, 9, 0),
        (6, 8, 4, 64, 300, 0),
        (3, 6, 2, 256, 150, 0),
        (7, 4, 1, 80, 200, 16),
        (3, 4, 2, 18, 140, 0),
        (2, 2, 1, 4, 5, 3),
        (1, 8, 2, 128, 1000, 0),
        (1, 8, 2, 128, 1000, 512),
        // past 512 dims a lane holds several vec4s of the head
        (2, 2, 1, 520, 130, 0),
        (2, 2, 2, 1030, 3, 0),
    ];
    for (n, n_head, n_head_kv, head_dim, pos0, window) in cases {
        let ctx = pos0 as usize + n;
        let a = Attention { n_head, n_head_kv, head_dim, pos0, scale: 1.0 / (head_dim as f32).sqrt(), window };
        let q: Vec<f32> = rng.vec(n * (n_head * head_dim) as usize).iter().map(|v| v * 3.0).collect();
        let k = rng.vec(ctx * (n_head_kv * head_dim) as usize);
        let v = rng.vec(ctx * (n_head_kv * head_dim) as usize);
        let out = g.alloc(q.len()).unwrap();
        g.attention(&upload(&g, &q), &upload(&g, &k), &upload(&g, &v), n, a, &out);
        let want = ref_attention(&q, &k, &v, n, a);
        assert_close(&format!("attention {a:?} n={n}"), &read(&g, &out, 0, q.len()), &want, 1e-4);
    }
}

#[test]
fn flash_decoding_matches_the_reference_and_the_whole_context_kernel() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(37);
    let cases = [
        // (n_head, n_head_kv, head_dim, pos0, window): one decoded row each
        (8, 2, 64, 1000, 0),
        (9, 3, 64, 129, 0),
        (4, 1, 256, 700, 0),
        (8, 2, 128, 1000, 512),
        (4, 2, 18, 300, 0),
        (2, 1, 80, 2000, 700),
        // past 512 dims (one key group, several vec4s per lane)
        (2, 1, 520, 400, 0),
    ];
    for (n_head, n_head_kv, head_dim, pos0, window) in cases {
        let ctx = pos0 as usize + 1;
        let a = Attention { n_head, n_head_kv, head_dim, pos0, scale: 1.0 / (head_dim as f32).sqrt(), window };
        let q: Vec<f32> = rng.vec((n_head * head_dim) as usize).iter().map(|v| v * 3.0).collect();
        let k = rng.vec(ctx * (n_head_kv * head_dim) as usize);
        let v = rng.vec(ctx * (n_head_kv * head_dim) as usize);
        let (qb, kb, vb) = (upload(&g, &q), upload(&g, &k), upload(&g, &v));
        let want = ref_attention(&q, &k, &v, 1, a);
        let whole = g.alloc(q.len()).unwrap();
        g.set_flash_decoding(Flash { min_keys: u32::MAX, min_chunk: 128 });
        g.attention(&qb, &kb, &vb, 1, a, &whole);
        let whole = read(&g, &whole, 0, q.len());
        for min_chunk in [128, 384] {
            let flash = Flash { min_keys: 1, min_chunk };
            let keys = if window > 0 { (pos0 + 1).min(window) } else { pos0 + 1 };
            match flash.split(keys) {
                Some(_) => {}
                None if min_chunk > 128 => continue,
                None => panic!("{a:?}: the case must split"),
            }
            g.set_flash_decoding(flash);
            let out = g.alloc(q.len()).unwrap();
            g.attention(&qb, &kb, &vb, 1, a, &out);
            let got = read(&g, &out, 0, q.len());
            assert_close(&format!("flash attention {a:?} chunk {min_chunk}"), &got, &want, 1e-4);
            let diff = got.iter().zip(&whole).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(diff < 1e-4, "{a:?}: split and whole-context kernels differ by {diff}");
        }
    }
}

/// `x` rounded to the nearest half-precision value (ties to even), for values in f16's range.
fn round_f16(x: f32) -> f32 {
    if x == 0.0 {
        return x;
    }
    let ulp = 2f64.powi((f64::from(x.abs()).log2().floor() as i32).max(-14) - 10);
    ((f64::from(x) / ulp).round_ties_even() * ulp) as f32
}

#[test]
fn half_precision_caches_hold_rounded_rows_for_attention() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(41);
    let cases = [
        // (n, n_head, n_head_kv, head_dim, pos0, window, flash-decoding)
        (5, 8, 2, 64, 0, 0, false),
        (4, 6, 2, 256, 37, 0, false),
        (3, 4, 2, 18, 140, 0, false),
        (7, 4, 1, 80, 200, 16, false),
        (1, 8, 2, 128, 1000, 0, false),
        (1, 8, 2, 128, 1000, 0, true),
        (1, 4, 2, 18, 300, 0, true),
    ];
    for (n, n_head, n_head_kv, head_dim, pos0, window, flash) in cases {
        let width = (n_head_kv * head_dim) as usize;
        g.set_kv_cache(KvCache::F16, width).unwrap();
        g.set_flash_decoding(if flash { Flash { min_keys: 1, min_chunk: 128 } } else { Flash::CPU });
        let ctx = pos0 as usize + n;
        let a = Attention { n_head, n_head_kv, head_dim, pos0, scale: 1.0 / (head_dim as f32).sqrt(), window };
        let q: Vec<f32> = rng.vec(n * (n_head * head_dim) as usize).iter().map(|v| v * 3.0).collect();
        let k = rng.vec(ctx * width);
        let v = rng.vec(ctx * width);
        let caches =
            [g.alloc(KvCache::F16.words(ctx * width)).unwrap(), g.alloc(KvCache::F16.words(ctx * width)).unwrap()];
        // The earlier positions as one store, this step's rows as another.
        for (rows, cache) in [&k, &v].into_iter().zip(&caches) {
            let at = pos0 as usize * width;
            if at > 0 {
                g.store_rows(&upload(&g, &rows[..at]), pos0 as usize, width, 0, cache);
            }
            g.store_rows(&upload(&g, &rows[at..]), n, width, pos0 as usize, cache);
        }
        let out = g.alloc(q.len()).unwrap();
        g.attention(&upload(&g, &q), &caches[0], &caches[1], n, a, &out);
        let (k16, v16): (Vec<f32>, Vec<f32>) =
            (k.iter().map(|&x| round_f16(x)).collect(), v.iter().map(|&x| round_f16(x)).collect());
        let want = ref_attention(&q, &k16, &v16, n, a);
        assert_close(
            &format!("f16-cache attention {a:?} n={n} flash={flash}"),
            &read(&g, &out, 0, q.len()),
            &want,
            1e-4,
        );
    }
    // The bits stored are the nearest halves, ties to even (the CPU engine's), across the range:
    // subnormals, exact ties, values that round up to the next binade, overflow to infinity.
    let mut row: Vec<f32> = vec![0.0, -0.0, 1.0, -2.5, 65504.0, 65520.0, -1e6, 6e-8, 2.9e-8, 3.0e-8, 1e-9, 6.1e-5];
    row.extend([1.0 + 1.0 / 2048.0, 1.0 + 3.0 / 2048.0, 2047.5, 2048.5, 0.333_333_34, -7.654_321, 1.5e-5, 4.0e-5]);
    row.extend(rng.vec(44).iter().map(|v| v * 100.0));
    let width = row.len();
    g.set_kv_cache(KvCache::F16, width).unwrap();
    let cache = g.alloc(KvCache::F16.words(2 * width)).unwrap();
    g.store_rows(&upload(&g, &row), 1, width, 1, &cache);
    let words = read(&g, &cache, width / 2, width / 2);
    let halves = words.iter().flat_map(|w| {
        let b = w.to_bits();
        [hearth::gguf::f16_to_f32((b & 0xffff) as u16), hearth::gguf::f16_to_f32((b >> 16) as u16)]
    });
    for (i, (got, x)) in halves.zip(&row).enumerate() {
        let want = if x.abs() >= 65520.0 { f32::INFINITY.copysign(*x) } else { round_f16(*x) };
        assert!(got.to_bits() == want.to_bits(), "element {i}: {x:e} stored as {got:e}, not {want:e}");
    }
    // Halves are packed by whole rows: an odd row is refused; f32 takes any.
    let odd = g.set_kv_cache(KvCache::F16, 9);
    assert!(matches!(&odd, Err(InferError::InvalidInput { .. })), "{odd:?}");
    g.set_kv_cache(KvCache::F32, 9).unwrap();
}

#[test]
fn argmax_takes_the_lowest_index_on_ties() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(41);
    let width = 1003;
    let mut x = rng.vec(3 * width);
    x[width + 700] = 5.0;
    x[width + 5] = 5.0;
    x[width + 999] = 5.0;
    x[2 * width + 1002] = 2.0;
    let xb = upload(&g, &x);
    let ids = g.alloc_ids(4).unwrap();
    g.argmax(&xb, 1, width, &ids, 2);
    g.argmax(&xb, 2, width, &ids, 0);
    assert_eq!(block_on(g.read_ids(&ids, 4)).unwrap(), vec![1002, 0, 5, 0]);
    let all_equal = upload(&g, &[1.0; 300]);
    g.argmax(&all_equal, 0, 300, &ids, 3);
    assert_eq!(block_on(g.read_ids(&ids, 4)).unwrap()[3], 0);
}

#[test]
fn queued_steps_see_their_own_parameters() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(51);
    // Two rope calls with different positions and two embeds of different ids, queued back to
    // back on the same buffers with a single readback at the end.
    let r = Rope {
        n_heads: 2,
        head_dim: 16,
        n_rot: 16,
        pos0: 3,
        base: 10000.0,
        freq_scale: 1.0,
        style: RopeStyle::Neox,
        factors: None,
    };
    let x = rng.vec(32);
    let xb = upload(&g, &x);
    g.rope(&xb, 1, r);
    g.rope(&xb, 1, Rope { pos0: 11, ..r });
    let want = ref_rope(&ref_rope(&x, 1, r).iter().map(|v| *v as f32).collect::<Vec<_>>(), 1, Rope { pos0: 11, ..r });

    let (rows, cols) = (10, 64);
    let bytes = random_weight(&mut rng, GgmlType::Q8_0, rows, cols);
    let wf = dequantize_to_vec(GgmlType::Q8_0, &bytes, rows * cols).unwrap();
    let w = g.upload_weight("tok", GgmlType::Q8_0, rows, cols, &bytes).unwrap();
    let ids = g.alloc_ids(1).unwrap();
    let out = g.alloc(2 * cols).unwrap();
    let step = g.alloc(cols).unwrap();
    for (slot, id) in [(0usize, 7u32), (1, 2)] {
        g.write_ids(&ids, &[id]).unwrap();
        g.embed(&w, &ids, 1, 1.0, &step);
        g.copy_rows(&step, 0, &out, slot, 1, cols);
    }
    let got_embed = read(&g, &out, 0, 2 * cols);
    let got_rope = read(&g, &xb, 0, 32);
    assert_close("two queued ropes", &got_rope, &want, 1e-4);
    let want: Vec<f64> = [7, 2].iter().flat_map(|&id| wf[id * cols..][..cols].iter().map(|v| f64::from(*v))).collect();
    assert_close("two queued embeds", &got_embed, &want, 0.0);
}

#[test]
fn ids_are_written_and_read_in_part() {
    let Some(g) = gpu() else { return };
    let ids = g.alloc_ids(10).unwrap();
    g.write_ids(&ids, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
    g.write_ids(&ids, &[42, 43, 44]).unwrap();
    assert_eq!(block_on(g.read_ids(&ids, 10)).unwrap(), vec![42, 43, 44, 4, 5, 6, 7, 8, 9, 10]);
    let x = upload(&g, &[0.5, 1.5, 2.5, 3.5, 4.5]);
    assert_eq!(read(&g, &x, 1, 3), vec![1.5, 2.5, 3.5]);
    assert!(g.write_ids(&ids, &[0; 11]).is_err());
    assert!(block_on(g.read(&x, 3, 3)).is_err());
}

#[test]
fn resident_bytes_count_uploads_and_frees() {
    let Some(g) = gpu() else { return };
    let bytes = 34 * 32 * 1024;
    let before = g.resident_bytes();
    let w = g.upload_weight("w", GgmlType::Q8_0, 1024, 1024, &vec![0; bytes]).unwrap();
    assert_eq!(g.weight_bytes(&w), bytes as u64);
    let loaded = g.resident_bytes();
    assert!(loaded >= before + bytes as u64, "{before} -> {loaded}");
    drop(w);
    // Freed memory goes back to the driver at the next allocation (which, with its readback,
    // may grow cubecl's own staging and uniform pools a little).
    let small = g.alloc(4).unwrap();
    read(&g, &small, 0, 1);
    let after = g.resident_bytes();
    assert!(after <= before + (64 << 10), "{before} -> {loaded} -> {after}");
}

/// Seconds per call of `op`: the best of `rounds` rounds of `reps` calls, each round ended by
/// `sync` (after a warm-up round).
fn best_of(rounds: usize, reps: u32, op: impl Fn(), sync: impl Fn()) -> f64 {
    op();
    sync();
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            (0..reps).for_each(|_| op());
            sync();
            t.elapsed().as_secs_f64() / f64::from(reps)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Timings on this machine's adapter; `cargo test --release --test gpu_backend -- --ignored`.
#[test]
#[ignore]
fn timings() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(61);
    for (ty, rows, cols, n, reps) in [
        (GgmlType::Q4_1, 1536, 576, 1, 20),
        (GgmlType::Q4_1, 576, 1536, 1, 20),
        (GgmlType::Q4_K, 2048, 2048, 1, 10),
        (GgmlType::Q6_K, 2048, 2048, 1, 10),
        (GgmlType::Q4_1, 1536, 576, 64, 5),
        (GgmlType::Q8_0, 262144, 640, 1, 3),
    ] {
        let bytes = random_weight(&mut rng, ty, rows, cols);
        let w = g.upload_weight("w", ty, rows, cols, &bytes).unwrap();
        let x = upload(&g, &rng.vec(n * cols));
        let out = g.alloc(n * rows).unwrap();
        let dt = best_of(3, reps, || g.matmul(&x, &w, n, &out), || drop(read(&g, &out, 0, 1)));
        eprintln!(
            "matmul {ty} {rows}x{cols} n={n}: {:.3} ms ({:.2} GB/s of weights, {} parts)",
            dt * 1e3,
            bytes.len() as f64 / dt / 1e9,
            w.parts()
        );
    }
    let len = 1 << 22;
    let (a, b) = (g.alloc(len).unwrap(), g.alloc(len).unwrap());
    let dt = best_of(3, 10, || g.add(&a, &b, len), || drop(read(&g, &a, 0, 1)));
    eprintln!("add of {len}: {:.3} ms", dt * 1e3);
    for (n, ctx) in [(1usize, 1024usize), (64, 1024)] {
        let at = Attention { n_head: 9, n_head_kv: 3, head_dim: 64, pos0: (ctx - n) as u32, scale: 0.125, window: 0 };
        let q = upload(&g, &rng.vec(n * 9 * 64));
        let kv = upload(&g, &rng.vec(ctx * 3 * 64));
        let out = g.alloc(n * 9 * 64).unwrap();
        let dt = best_of(3, 5, || g.attention(&q, &kv, &kv, n, at, &out), || drop(read(&g, &out, 0, 1)));
        eprintln!("attention n={n} ctx={ctx} 9/3 heads of 64: {:.3} ms", dt * 1e3);
    }
    // A decoded token at growing contexts, with and without flash-decoding (split from 2 tiles).
    for ctx in [256usize, 1024, 4096] {
        let at = Attention { n_head: 9, n_head_kv: 3, head_dim: 64, pos0: (ctx - 1) as u32, scale: 0.125, window: 0 };
        let q = upload(&g, &rng.vec(9 * 64));
        let kv = upload(&g, &rng.vec(ctx * 3 * 64));
        let out = g.alloc(9 * 64).unwrap();
        for flash in [Flash { min_keys: u32::MAX, min_chunk: 256 }, Flash { min_keys: 1, min_chunk: 256 }] {
            g.set_flash_decoding(flash);
            let dt = best_of(3, 5, || g.attention(&q, &kv, &kv, 1, at, &out), || drop(read(&g, &out, 0, 1)));
            let split = flash.split(ctx as u32).map_or(1, |(parts, _)| parts);
            eprintln!("attention n=1 ctx={ctx} 9/3 heads of 64, {split} ranges: {:.3} ms", dt * 1e3);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sampling ops: the GPU against the CPU backend (itself checked against a full sort)

/// `rows` rows of `width`, the `row`th from `fill`, the others 1e30 (a top-k of the wrong row
/// shows at once).
fn rows_around(row: usize, rows: usize, width: usize, fill: &[f32]) -> Vec<f32> {
    let mut x = vec![1e30; rows * width];
    x[row * width..][..width].copy_from_slice(fill);
    x
}

/// Coarse random values (many ties), with a sprinkling of NaN, infinities and signed zeros.
fn tricky_row(rng: &mut Rng, width: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..width).map(|_| (rng.below(4000) as f32 - 2000.0) * 0.01).collect();
    for _ in 0..width / 50 + 3 {
        let i = rng.below(width);
        x[i] = [f32::NAN, -f32::NAN, f32::NEG_INFINITY, -0.0, 0.0, 19.99][rng.below(6)];
    }
    x
}

fn gpu_top_k(g: &Gpu, x: &<Gpu as Compute>::Buf, row: usize, width: usize, k: usize) -> Vec<(u32, f32)> {
    let (vals, ids) = (g.alloc(k).unwrap(), g.alloc_ids(k).unwrap());
    g.top_k(x, row, width, k, &vals, &ids);
    let ids = block_on(g.read_ids(&ids, k)).unwrap();
    ids.into_iter().zip(read(g, &vals, 0, k)).collect()
}

fn cpu_top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let cpu = hearth::infer::Cpu::new();
    let x = cpu.upload_f32(row).unwrap();
    let (vals, ids) = (cpu.alloc(k).unwrap(), cpu.alloc_ids(k).unwrap());
    cpu.top_k(&x, 0, row.len(), k, &vals, &ids);
    let ids = block_on(cpu.read_ids(&ids, k)).unwrap();
    ids.into_iter().zip(block_on(cpu.read(&vals, 0, k)).unwrap()).collect()
}

/// Bit-exact pairs (so `-0.0` vs `+0.0` and `-inf` count).
#[track_caller]
fn assert_same_candidates(what: &str, got: &[(u32, f32)], want: &[(u32, f32)]) {
    let bits = |c: &[(u32, f32)]| c.iter().map(|&(i, v)| (i, v.to_bits())).collect::<Vec<_>>();
    assert_eq!(bits(got), bits(want), "{what}:\n got {got:?}\nwant {want:?}");
}

#[test]
fn top_k_matches_the_cpu_on_every_width() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(71);
    // One pass (<= 2048), two passes with ranges of every size, and Gemma's vocabulary.
    for (width, row) in [(100, 0), (2048, 1), (2049, 2), (32000, 1), (151_936, 2), (262_144, 1)] {
        let fill = tricky_row(&mut rng, width);
        let x = upload(&g, &rows_around(row, 3, width, &fill));
        for k in [1, 40, 64] {
            let got = gpu_top_k(&g, &x, row, width, k);
            assert_same_candidates(&format!("width {width} k {k}"), &got, &cpu_top_k(&fill, k));
        }
    }
}

#[test]
fn top_k_ties_nan_and_degenerate_rows() {
    let Some(g) = gpu() else { return };
    let width = 5000;
    // All equal: the lowest indices, in order, from every range.
    let x = upload(&g, &rows_around(1, 2, width, &vec![0.25; width]));
    let got = gpu_top_k(&g, &x, 1, width, 64);
    assert_eq!(got.iter().map(|c| c.0).collect::<Vec<_>>(), (0..64).collect::<Vec<_>>());
    // Only 10 numbers among NaNs: the numbers, then NaNs (lowest index first) reported as -inf.
    let mut fill = vec![f32::NAN; width];
    for (i, j) in (0..10).map(|i| (i, 4990 - 499 * i)) {
        fill[j] = i as f32 - 5.0;
    }
    fill[3] = f32::NEG_INFINITY;
    let x = upload(&g, &rows_around(0, 2, width, &fill));
    let got = gpu_top_k(&g, &x, 0, width, 40);
    assert_same_candidates("nan row", &got, &cpu_top_k(&fill, 40));
    assert_eq!(got[10], (3, f32::NEG_INFINITY));
    assert_eq!(got[11], (0, f32::NEG_INFINITY));
    assert!(got.iter().all(|c| !c.1.is_nan()));
    // Exact ties at the boundary of k in separate ranges, and one huge NaN-free spread.
    let mut fill = vec![-1.0f32; 300_000];
    for j in (7..300_000).step_by(4999) {
        fill[j] = 2.0;
    }
    fill[299_999] = 3.0;
    let x = upload(&g, &fill);
    for k in [1, 40, 64] {
        assert_same_candidates("spread ties", &gpu_top_k(&g, &x, 0, 300_000, k), &cpu_top_k(&fill, k));
    }
}

#[test]
fn queued_top_k_calls_share_the_scratch_safely() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(73);
    let width = 40_000;
    let rows: Vec<Vec<f32>> = (0..3).map(|_| rng.vec(width)).collect();
    let x = upload(&g, &rows.concat());
    let outs: Vec<_> = (0..3).map(|_| (g.alloc(40).unwrap(), g.alloc_ids(40).unwrap())).collect();
    for (r, (vals, ids)) in outs.iter().enumerate() {
        g.top_k(&x, r, width, 40, vals, ids);
    }
    for (r, (vals, ids)) in outs.iter().enumerate() {
        let got: Vec<(u32, f32)> =
            block_on(g.read_ids(ids, 40)).unwrap().into_iter().zip(read(&g, vals, 0, 40)).collect();
        assert_same_candidates(&format!("row {r}"), &got, &cpu_top_k(&rows[r], 40));
    }
}

#[test]
fn penalize_matches_the_cpu() {
    let Some(g) = gpu() else { return };
    let cpu = hearth::infer::Cpu::new();
    let mut rng = Rng::new(79);
    for (width, row, n_ids) in [(1000, 1, 1), (32000, 2, 300), (262_144, 1, 4096)] {
        let mut fill = tricky_row(&mut rng, width);
        fill[5] = 0.0;
        fill[6] = -0.0;
        let mut ids: Vec<u32> = (0..n_ids).map(|_| rng.below(width) as u32).collect();
        ids.extend([5, 6, width as u32 + 3]); // zeros stay zero; an id past the row is ignored
        ids.sort_unstable();
        ids.dedup();
        let all = rows_around(row, 3, width, &fill);
        let (xg, xc) = (upload(&g, &all), cpu.upload_f32(&all).unwrap());
        let idg = g.alloc_ids(ids.len() + 5).unwrap();
        let idc = cpu.alloc_ids(ids.len()).unwrap();
        g.write_ids(&idg, &ids).unwrap();
        cpu.write_ids(&idc, &ids).unwrap();
        g.penalize(&xg, row, width, &idg, ids.len(), 1.3);
        cpu.penalize(&xc, row, width, &idc, ids.len(), 1.3);
        // A second penalty queued behind the first, on a subset.
        let half = ids.len() / 2;
        g.penalize(&xg, row, width, &idg, half, 0.7);
        cpu.penalize(&xc, row, width, &idc, half, 0.7);
        let got = read(&g, &xg, 0, 3 * width);
        let want = block_on(cpu.read(&xc, 0, 3 * width)).unwrap();
        for (e, (a, b)) in got.iter().zip(&want).enumerate() {
            // Products are exact; WGSL allows quotients 2.5 ulp off.
            let ok = a.to_bits() == b.to_bits() || (a - b).abs() <= 3.0 * f32::EPSILON * b.abs();
            assert!(ok, "width {width}: element {e} is {a}, CPU {b}");
        }
        // Zeros, infinities and NaNs stay as they are; everything else penalized changes.
        let changed = |v: &[f32]| v.iter().zip(&all).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        assert_eq!(changed(&got), changed(&want), "width {width}");
        assert!(changed(&got) * 10 >= (ids.len() - 3) * 9, "width {width}: {}", changed(&got));
    }
}

/// `top_k` (plus its two small readbacks) against reading the whole row back, on Gemma's
/// vocabulary; `cargo test --release --test gpu_backend -- --ignored top_k_timing --nocapture`.
#[test]
#[ignore]
fn top_k_timing() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(83);
    let width = 262_144;
    let x = upload(&g, &rng.vec(width));
    let (vals, ids) = (g.alloc(64).unwrap(), g.alloc_ids(64).unwrap());
    for k in [1usize, 40, 64] {
        let dt = best_of(
            5,
            10,
            || {
                g.top_k(&x, 0, width, k, &vals, &ids);
                drop(block_on(g.read_ids(&ids, k)).unwrap());
                drop(read(&g, &vals, 0, k));
            },
            || {},
        );
        eprintln!("top_k width {width} k {k} + read back {k} pairs: {:.3} ms", dt * 1e3);
    }
    let dt = best_of(
        5,
        10,
        || {
            drop(block_on(g.read_ids(&ids, 40)).unwrap());
            drop(read(&g, &vals, 0, 40));
        },
        || {},
    );
    eprintln!("the two readbacks of 40 alone: {:.3} ms", dt * 1e3);
    let dt = best_of(5, 10, || g.argmax(&x, 0, width, &ids, 0), || drop(block_on(g.read_ids(&ids, 1))));
    eprintln!("argmax width {width} + read back 1 id: {:.3} ms", dt * 1e3);
    let dt = best_of(5, 10, || drop(read(&g, &x, 0, width)), || {});
    eprintln!("read back the row of {width}: {:.3} ms", dt * 1e3);
}

/// The fused ops (one dispatch each on the GPU) against the ops they fuse, in both kernel
/// families: the three projections in mixed formats, gate and up with the activation, biases +
/// RoPE + cache write, and the residual add with the norm after it (with and without a
/// post-norm); and the projections against the f64 reference.
#[test]
fn fused_ops_match_the_ops_they_fuse() {
    let Some(g) = gpu() else { return };
    let mut rng = Rng::new(0x0f05_ed00);
    let default = g.kernels();
    let cols = 512;
    let fmts = [
        [GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K],
        [GgmlType::Q5_0, GgmlType::Q5_0, GgmlType::Q8_0],
        [GgmlType::Q4_1, GgmlType::F16, GgmlType::Q4_0],
        [GgmlType::F32, GgmlType::Q8_0, GgmlType::F32],
    ];
    for kernels in [Kernels::Rows, Kernels::Portable, Kernels::Subgroup] {
        if let Err(e) = g.set_kernels(kernels) {
            eprintln!("SKIPPED {kernels:?}: {e}");
            assert!(g.features().subgroups.is_none() && kernels == Kernels::Subgroup);
            continue;
        }
        assert_eq!(g.kernels(), kernels);
        for tys in fmts {
            let rows = [256, 64, 64];
            let bytes: Vec<Vec<u8>> = (0..3).map(|m| random_weight(&mut rng, tys[m], rows[m], cols)).collect();
            let ws: Vec<_> = (0..3).map(|m| g.upload_weight("w", tys[m], rows[m], cols, &bytes[m]).unwrap()).collect();
            let x = rng.vec(cols);
            let xb = upload(&g, &x);
            let fused: Vec<_> = rows.iter().map(|&r| g.alloc(r).unwrap()).collect();
            let plain: Vec<_> = rows.iter().map(|&r| g.alloc(r).unwrap()).collect();
            let before = g.launches();
            g.qkv(&xb, &ws[0], &ws[1], &ws[2], 1, &fused[0], &fused[1], &fused[2]);
            assert_eq!(g.launches() - before, 1, "{kernels:?} {tys:?}: one dispatch");
            for m in 0..3 {
                g.matmul(&xb, &ws[m], 1, &plain[m]);
                let wf = dequantize_to_vec(tys[m], &bytes[m], rows[m] * cols).unwrap();
                let name = format!("qkv {kernels:?} {tys:?} weight {m}");
                let got = read(&g, &fused[m], 0, rows[m]);
                assert_close(&name, &got, &ref_matmul(&x, &wf, 1, rows[m], cols), 1e-4);
                let want: Vec<f64> = read(&g, &plain[m], 0, rows[m]).into_iter().map(f64::from).collect();
                assert_close(&name, &got, &want, 1e-6);
            }
            // Gate and up (the first two when they share a format).
            if tys[0] == tys[1] || tys[0] == tys[2] {
                let up = if tys[0] == tys[1] { 1 } else { 2 };
                let gate_w = g.upload_weight("g", tys[0], 64, cols, &bytes[0][..bytes[0].len() / 4]).unwrap();
                for act in [Activation::Silu, Activation::GeluTanh] {
                    let (s0, s1, out, want) =
                        (g.alloc(64).unwrap(), g.alloc(64).unwrap(), g.alloc(64).unwrap(), g.alloc(64).unwrap());
                    let before = g.launches();
                    g.gated_ffn(&xb, &gate_w, &ws[up], 1, 64, act, (&s0, &s1), &out);
                    assert_eq!(g.launches() - before, 1, "{kernels:?} {tys:?}: one dispatch");
                    g.matmul(&xb, &gate_w, 1, &s0);
                    g.matmul(&xb, &ws[up], 1, &s1);
                    g.glu(&s0, &s1, 64, act, &want);
                    let want: Vec<f64> = read(&g, &want, 0, 64).into_iter().map(f64::from).collect();
                    assert_close(&format!("ffn {kernels:?} {tys:?} {act:?}"), &read(&g, &out, 0, 64), &want, 1e-6);
                }
            }
        }
    }
    g.set_kernels(default).unwrap();

    // Biases or per-head norms, RoPE and the cache write, against the separate ops: one
    // dispatch, except norms with partial rotation (two: the norms, then the rest).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Pre {
        Bias,
        Plain,
        Norms,
    }
    let cases = [
        (RopeStyle::Neox, 64, Pre::Bias),
        (RopeStyle::Normal, 32, Pre::Plain),
        (RopeStyle::Neox, 64, Pre::Norms),
        (RopeStyle::Normal, 64, Pre::Norms),
        (RopeStyle::Normal, 32, Pre::Norms),
    ];
    for (style, n_rot, pre) in cases {
        let (n, nh, nkv, hd, pos0) = (3, 4, 2, 64u32, 5u32);
        let r = |heads| Rope {
            n_heads: heads,
            head_dim: hd,
            n_rot,
            pos0,
            base: 10000.0,
            freq_scale: 1.0,
            style,
            factors: None,
        };
        let (qw, kvw) = ((nh * hd) as usize, (nkv * hd) as usize);
        let (q, k, v) = (rng.vec(n * qw), rng.vec(n * kvw), rng.vec(n * kvw));
        let (bq, bk, bv) = (upload(&g, &rng.vec(qw)), upload(&g, &rng.vec(kvw)), upload(&g, &rng.vec(kvw)));
        let (gq, gk) = (upload(&g, &rng.vec(hd as usize)), upload(&g, &rng.vec(hd as usize)));
        let ctx = 16 * kvw;
        let run = |fused: bool| {
            let (qb, kb, vb) = (upload(&g, &q), upload(&g, &k), upload(&g, &v));
            let (qn, kn) = (g.alloc(n * qw).unwrap(), g.alloc(n * kvw).unwrap());
            let (kc, vc) = (g.alloc(ctx).unwrap(), g.alloc(ctx).unwrap());
            let b = (pre == Pre::Bias).then_some((&bq, &bk, &bv));
            let norms =
                (pre == Pre::Norms).then_some(HeadNorms { wq: &gq, wk: &gk, eps: 1e-6, q_out: &qn, k_out: &kn });
            // Where the rotated queries are.
            let q_out = if norms.is_some() { &qn } else { &qb };
            if fused {
                let before = g.launches();
                g.rope_store(&qb, &kb, &vb, b, norms, n, r(nh), r(nkv), kvw, &kc, &vc);
                let want = if pre == Pre::Norms && n_rot != hd { 2 } else { 1 };
                assert_eq!(g.launches() - before, want, "{style:?} {n_rot} {pre:?}");
            } else {
                if let Some((bq, bk, bv)) = b {
                    g.add_bias(&qb, bq, n, qw);
                    g.add_bias(&kb, bk, n, kvw);
                    g.add_bias(&vb, bv, n, kvw);
                }
                let (qr, kr) = if norms.is_some() {
                    let (nq, nk) = (n * nh as usize, n * nkv as usize);
                    g.rms_norm(&qb, &gq, nq, hd as usize, 1e-6, &qn);
                    g.rms_norm(&kb, &gk, nk, hd as usize, 1e-6, &kn);
                    (&qn, &kn)
                } else {
                    (&qb, &kb)
                };
                g.rope(qr, n, r(nh));
                g.rope(kr, n, r(nkv));
                g.store_rows(kr, n, kvw, pos0 as usize, &kc);
                g.store_rows(&vb, n, kvw, pos0 as usize, &vc);
            }
            [read(&g, q_out, 0, n * qw), read(&g, &kc, 0, ctx), read(&g, &vc, 0, ctx)]
        };
        let (got, want) = (run(true), run(false));
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let b: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            assert_close(&format!("rope_store {style:?} {n_rot} {pre:?} output {i}"), a, &b, 1e-6);
        }
    }

    // The per-head norms of the queries and the keys together.
    let (hd, qr, kr) = (64, 6, 2);
    let (q, k, gq, gk) = (rng.vec(qr * hd), rng.vec(kr * hd), rng.vec(hd), rng.vec(hd));
    let (qb, kb, gqb, gkb) = (upload(&g, &q), upload(&g, &k), upload(&g, &gq), upload(&g, &gk));
    let outs: Vec<_> = [qr, kr, qr, kr].iter().map(|&r| g.alloc(r * hd).unwrap()).collect();
    let before = g.launches();
    g.head_norms((&qb, &gqb, qr), (&kb, &gkb, kr), hd, 1e-6, &outs[0], &outs[1]);
    assert_eq!(g.launches() - before, 1);
    g.rms_norm(&qb, &gqb, qr, hd, 1e-6, &outs[2]);
    g.rms_norm(&kb, &gkb, kr, hd, 1e-6, &outs[3]);
    for (a, b, len) in [(0, 2, qr * hd), (1, 3, kr * hd)] {
        let want: Vec<f64> = read(&g, &outs[b], 0, len).into_iter().map(f64::from).collect();
        assert_close(&format!("head_norms output {a}"), &read(&g, &outs[a], 0, len), &want, 1e-6);
    }

    // The embedding with the norm after it, every format.
    for ty in [GgmlType::Q4_1, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16, GgmlType::Q4_K] {
        let (rows, cols) = (40, 256);
        let table = g.upload_weight("t", ty, rows, cols, &random_weight(&mut rng, ty, rows, cols)).unwrap();
        let ids = g.alloc_ids(3).unwrap();
        g.write_ids(&ids, &[7, 39, 0]).unwrap();
        let norm = upload(&g, &rng.vec(cols));
        let outs: Vec<_> = (0..4).map(|_| g.alloc(3 * cols).unwrap()).collect();
        let before = g.launches();
        g.embed_norm(&table, &ids, 3, 1.5, &outs[0], &norm, cols, 1e-6, &outs[1]);
        assert_eq!(g.launches() - before, 1, "{ty}: one dispatch");
        g.embed(&table, &ids, 3, 1.5, &outs[2]);
        g.rms_norm(&outs[2], &norm, 3, cols, 1e-6, &outs[3]);
        for (a, b) in [(0, 2), (1, 3)] {
            let want: Vec<f64> = read(&g, &outs[b], 0, 3 * cols).into_iter().map(f64::from).collect();
            assert_close(&format!("embed_norm {ty} output {a}"), &read(&g, &outs[a], 0, 3 * cols), &want, 1e-6);
        }
    }

    // The residual add and the norm, with and without a post-norm; `out` is neither input.
    let (rows, dim) = (3, 320);
    let (x, h, w, pre) = (rng.vec(rows * dim), rng.vec(rows * dim), rng.vec(dim), rng.vec(dim));
    let (wb, preb) = (upload(&g, &w), upload(&g, &pre));
    for with_pre in [false, true] {
        let run = |fused: bool| {
            let (xb, hb, out) = (upload(&g, &x), upload(&g, &h), g.alloc(rows * dim).unwrap());
            let p = with_pre.then_some(&preb);
            if fused {
                let before = g.launches();
                g.add_rms_norm(&xb, &hb, p, &wb, rows, dim, 1e-6, &out);
                assert_eq!(g.launches() - before, 1);
            } else {
                if let Some(p) = p {
                    g.rms_norm(&hb, p, rows, dim, 1e-6, &out);
                    g.add(&xb, &out, rows * dim);
                } else {
                    g.add(&xb, &hb, rows * dim);
                }
                g.rms_norm(&xb, &wb, rows, dim, 1e-6, &out);
            }
            [read(&g, &xb, 0, rows * dim), read(&g, &out, 0, rows * dim)]
        };
        let (got, want) = (run(true), run(false));
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            let b: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            assert_close(&format!("add_rms_norm pre {with_pre} output {i}"), a, &b, 1e-6);
        }
    }
}
