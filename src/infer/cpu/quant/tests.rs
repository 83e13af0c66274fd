use super::*;
use crate::gguf::dequantize;
use crate::rng::Rng;

/// Every format with a quantized kernel.
const FORMATS: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn check_format(ty: GgmlType, seed: u64) {
    check_kernel(ty, kernel(ty).unwrap(), seed);
    // The baseline kernels too where the machine picked faster ones (AVX2).
    check_kernel(ty, baseline(ty).unwrap(), seed);
}

fn check_kernel(ty: GgmlType, k: Kernel, seed: u64) {
    let mut rng = Rng::new(seed);
    let (rows, cols, n) = (6, 1024, 3);
    let w = random_blocks(&mut rng, ty, rows, cols);
    let mut x = rng.signed_f32s(n * cols);
    // Some structure: a few outliers and a zero block, as real activations have.
    x[5] = 9.0;
    x[cols + 300] = -7.5;
    x[2 * cols..2 * cols + 256].fill(0.0);
    let mut acts = QuantActs::default();
    acts.quantize(&x, n, cols);
    let row_bytes = cols / ty.block_size() * ty.type_size();
    // One token, as a decode step runs (the kernels keep its sum in a register): the same bits.
    let mut one = QuantActs::default();
    one.quantize(&x[..cols], 1, cols);
    for r in 0..rows {
        let wr = &w[r * row_bytes..(r + 1) * row_bytes];
        let mut got = [0f32];
        (k.dot)(wr, &one, &mut got);
        let reference = (k.reference)(wr, one.row(0));
        assert_eq!(got[0].to_bits(), reference.to_bits(), "{ty} row {r}, one token: {} vs {reference}", got[0]);
    }
    let mut wf = vec![0f32; cols];
    for r in 0..rows {
        let wr = &w[r * row_bytes..(r + 1) * row_bytes];
        dequantize(ty, wr, cols, &mut wf).unwrap();
        let mut all = vec![0f32; n];
        (k.dot)(wr, &acts, &mut all);
        for i in 0..n {
            let a = acts.row(i);
            let fast = all[i];
            let reference = (k.reference)(wr, a);
            assert_eq!(
                fast.to_bits(),
                reference.to_bits(),
                "{ty} row {r} token {i}: fast {fast} reference {reference}"
            );
            // Against f32 dequantize-then-dot: the only approximation is the activations' 8-bit
            // rounding, at most half a step (amax / 254) per element, so the error is bounded by
            // sum |w| * step / 2 over each block, plus f32 rounding of the sums.
            let xs = &x[i * cols..(i + 1) * cols];
            let block = 32;
            let exact: f64 = wf.iter().zip(xs).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let mut bound = 0f64;
            for (wb, xb) in wf.chunks_exact(block).zip(xs.chunks_exact(block)) {
                let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
                let abs_w: f64 = wb.iter().map(|v| f64::from(v.abs())).sum();
                bound += abs_w * f64::from(amax) / 254.0;
            }
            let mag: f64 = wf.iter().zip(xs).map(|(&a, &b)| f64::from((a * b).abs())).sum();
            bound = bound * 1.0001 + 1e-5 * mag + 1e-6;
            let err = (f64::from(fast) - exact).abs();
            assert!(err <= bound, "{ty} row {r} token {i}: {fast} vs exact {exact}: error {err} > bound {bound}");
            // And not vacuous: the bound is well below the size of the product's terms.
            assert!(bound < 0.05 * mag + 1e-3, "{ty}: bound {bound} too loose against {mag}");
        }
    }
}

#[test]
fn fast_kernels_equal_the_reference_and_the_f32_product_within_the_quantization_error() {
    for (s, ty) in FORMATS.into_iter().enumerate() {
        for seed in 0..4 {
            check_format(ty, 100 * s as u64 + seed);
        }
    }
}

#[test]
fn kernels_exist_exactly_for_the_block_formats() {
    for ty in GgmlType::all() {
        assert_eq!(kernel(ty).is_some(), FORMATS.contains(&ty), "{ty}");
    }
}

#[test]
fn quantized_activations_round_to_the_nearest_step() {
    let mut rng = Rng::new(9);
    let cols = 512;
    let x = rng.signed_f32s(2 * cols);
    let mut acts = QuantActs::default();
    acts.quantize(&x, 2, cols);
    for i in 0..2 {
        let a = acts.row(i);
        for (b, xs) in x[i * cols..(i + 1) * cols].chunks_exact(32).enumerate() {
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert_eq!(a.d[b], amax / 127.0);
            let qs = &a.qs[b * 32..(b + 1) * 32];
            assert_eq!(qs.iter().map(|q| q.unsigned_abs()).max(), Some(127), "the largest maps to 127");
            for (&q, &v) in qs.iter().zip(xs) {
                assert!((f32::from(q) * a.d[b] - v).abs() <= a.d[b] * 0.5001, "{q} for {v}");
            }
            let s: i32 = qs.iter().map(|&q| i32::from(q)).sum();
            assert_eq!(a.sum[b], a.d[b] * s as f32);
        }
    }
    // A zero row quantizes to zero with a zero scale (no NaN from 0/0), and a shorter batch
    // after a longer one sees only its own rows.
    acts.quantize(&vec![0.0; cols], 1, cols);
    assert!(acts.row(0).qs.iter().all(|&q| q == 0) && acts.row(0).d.iter().all(|&d| d == 0.0));
    assert_eq!(acts.row(0).qs.len(), cols);
}

#[test]
fn dot_i8_equals_the_portable_loop() {
    let mut rng = Rng::new(4);
    for len in [16, 32, 256, 4096] {
        let a: Vec<i8> = (0..len).map(|_| rng.byte() as i8).collect();
        let b: Vec<i8> = (0..len).map(|_| rng.byte() as i8).collect();
        let want: i32 = a.iter().zip(&b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
        assert_eq!(dot_i8(&a, &b), want, "len {len}");
        assert_eq!(dot_i8_portable(&a, &b), want, "len {len}");
    }
}

#[test]
fn dot_i8_is_exact_at_the_extremes() {
    let a = vec![-128i8; 64];
    let b = vec![-128i8; 64];
    assert_eq!(dot_i8(&a, &b), 64 * 16384);
    let c: Vec<i8> = (0..64).map(|i| if i % 2 == 0 { 127 } else { -128 }).collect();
    assert_eq!(dot_i8(&a, &c), 32 * (127 * -128) + 32 * 16384);
    assert_eq!(dot_i8_portable(&a, &c), 32 * (127 * -128) + 32 * 16384);
}
