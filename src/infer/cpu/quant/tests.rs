use super::*;
use crate::gguf::dequantize;
use crate::rng::Rng;

/// Every format with a quantized kernel.
pub(crate) const FORMATS: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// A positive f16 in [2^-9, 2^-4): a sane block scale.
fn scale_bits(rng: &mut Rng) -> [u8; 2] {
    let exp = 6 + rng.below(5) as u16;
    let man = rng.below(1024) as u16;
    ((exp << 10) | man).to_le_bytes()
}

/// `rows` random rows of `cols` in format `ty`: random quant bytes, sane scales (and a negative
/// minimum, as the quantizers write it, for the formats with one).
pub(crate) fn random_weights(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..rows * cols / ty.block_size() * ty.type_size()).map(|_| rng.byte()).collect();
    for b in bytes.chunks_exact_mut(ty.type_size()) {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => b[0..2].copy_from_slice(&scale_bits(rng)),
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => {
                b[0..2].copy_from_slice(&scale_bits(rng));
                let mut m = scale_bits(rng);
                if ty == GgmlType::Q4_1 || ty == GgmlType::Q5_1 {
                    m[1] |= 0x80; // the minimum is usually negative
                }
                b[2..4].copy_from_slice(&m);
            }
            GgmlType::Q6_K => b[208..210].copy_from_slice(&scale_bits(rng)),
            _ => unreachable!(),
        }
    }
    bytes
}

fn check_format(ty: GgmlType, seed: u64) {
    let mut rng = Rng::new(seed);
    let k = kernel(ty).unwrap();
    let (rows, cols, n) = (6, 1024, 3);
    let w = random_weights(&mut rng, ty, rows, cols);
    let mut x = rng.signed_f32s(n * cols);
    // Some structure: a few outliers and a zero block, as real activations have.
    x[5] = 9.0;
    x[cols + 300] = -7.5;
    x[2 * cols..2 * cols + 256].fill(0.0);
    let mut acts = QuantActs::default();
    acts.quantize(k.act, &x, n, cols);
    let row_bytes = cols / ty.block_size() * ty.type_size();
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
            let block = k.act.block();
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
    for format in [ActFormat::Q8_0, ActFormat::Q8_K] {
        let cols = 512;
        let x = rng.signed_f32s(2 * cols);
        let mut acts = QuantActs::default();
        acts.quantize(format, &x, 2, cols);
        let block = format.block();
        for i in 0..2 {
            let a = acts.row(i);
            for (b, xs) in x[i * cols..(i + 1) * cols].chunks_exact(block).enumerate() {
                let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert_eq!(a.d[b], amax / 127.0);
                let qs = &a.qs[b * block..(b + 1) * block];
                assert_eq!(qs.iter().map(|q| q.unsigned_abs()).max(), Some(127), "the largest maps to 127");
                for (&q, &v) in qs.iter().zip(xs) {
                    assert!((f32::from(q) * a.d[b] - v).abs() <= a.d[b] * 0.5001, "{format:?}: {q} for {v}");
                }
                match format {
                    ActFormat::Q8_0 => {
                        let s: i32 = qs.iter().map(|&q| i32::from(q)).sum();
                        assert_eq!(a.sum[b], a.d[b] * s as f32);
                    }
                    ActFormat::Q8_K => {
                        for (j, sub) in qs.chunks_exact(16).enumerate() {
                            assert_eq!(i32::from(a.bsums[b * 16 + j]), sub.iter().map(|&q| i32::from(q)).sum::<i32>());
                        }
                    }
                }
            }
        }
        // A zero row quantizes to zero with a zero scale (no NaN from 0/0).
        acts.quantize(format, &vec![0.0; cols], 1, cols);
        assert!(acts.row(0).qs.iter().all(|&q| q == 0) && acts.row(0).d.iter().all(|&d| d == 0.0));
    }
}

#[test]
fn dot_i8_is_exact_at_the_extremes() {
    let a = vec![-128i8; 64];
    let b = vec![-128i8; 64];
    assert_eq!(dot_i8(&a, &b), 64 * 16384);
    let c: Vec<i8> = (0..64).map(|i| if i % 2 == 0 { 127 } else { -128 }).collect();
    assert_eq!(dot_i8(&a, &c), 32 * (127 * -128) + 32 * 16384);
}
