use super::*;

/// The reference: every index sorted by (order key descending, index).
fn naive_top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by_key(|&i| (std::cmp::Reverse(order_key(row[i as usize])), i));
    idx[..k].iter().map(|&i| (i, order_value(order_key(row[i as usize])))).collect()
}

#[test]
fn top_k_orders_ties_nan_and_zeros() {
    let cpu = Cpu::new();
    let width = 10;
    let mut x = vec![0f32; 2 * width];
    x[width..].copy_from_slice(&[
        1.0,
        f32::NAN,
        3.0,
        -0.0,
        3.0,
        f32::NEG_INFINITY,
        0.0,
        f32::INFINITY,
        -f32::NAN,
        -2.0,
    ]);
    let xb = cpu.upload_f32(&x).unwrap();
    let (vals, ids) = (cpu.alloc(MAX_TOP_K).unwrap(), cpu.alloc_ids(MAX_TOP_K).unwrap());
    cpu.top_k(&xb, 1, width, 10, &vals, &ids);
    let inf = f32::INFINITY;
    let pairs = |k: usize| -> Vec<(u32, f32)> {
        ids.borrow()[..k].iter().copied().zip(vals.borrow()[..k].iter().copied()).collect()
    };
    let got = pairs(10);
    let want = [(7, inf), (2, 3.0), (4, 3.0), (0, 1.0), (3, 0.0), (6, 0.0), (9, -2.0), (5, -inf), (1, -inf), (8, -inf)];
    assert_eq!(got, want);
    assert!(got.iter().all(|(_, v)| v.to_bits() != (-0.0f32).to_bits()));
    cpu.top_k(&xb, 1, width, 3, &vals, &ids);
    assert_eq!(ids.borrow()[..3], [7, 2, 4]);
}

#[test]
fn top_k_matches_a_full_sort_and_penalize_matches_the_sampler() {
    let cpu = Cpu::new();
    let mut rng = crate::rng::Rng::new(5);
    let mut next = move || rng.next_u32();
    for width in [64usize, 1000, 32000] {
        // Coarse values: many ties.
        let row: Vec<f32> = (0..width).map(|_| (next() % 200) as f32 * 0.5 - 50.0).collect();
        let xb = cpu.upload_f32(&[vec![9.0; width], row.clone()].concat()).unwrap();
        let distinct: std::collections::BTreeSet<u32> = (0..50).map(|_| next() % width as u32).collect();
        let ids: Vec<u32> = distinct.into_iter().collect();
        let idb = cpu.alloc_ids(ids.len()).unwrap();
        cpu.write_ids(&idb, &ids).unwrap();
        cpu.penalize(&xb, 1, width, &idb, ids.len(), 1.5);
        let mut want = row.clone();
        for &t in &ids {
            let v = &mut want[t as usize];
            *v = if *v > 0.0 { *v / 1.5 } else { *v * 1.5 };
        }
        assert_eq!(xb.borrow()[width..], want[..], "penalize, width {width}");
        assert!(xb.borrow()[..width].iter().all(|&v| v == 9.0), "row 0 untouched");
        let (vals, out) = (cpu.alloc(MAX_TOP_K).unwrap(), cpu.alloc_ids(MAX_TOP_K).unwrap());
        for k in [1, 40, 64] {
            cpu.top_k(&xb, 1, width, k, &vals, &out);
            let got: Vec<(u32, f32)> =
                out.borrow()[..k].iter().copied().zip(vals.borrow()[..k].iter().copied()).collect();
            assert_eq!(got, naive_top_k(&want, k), "width {width} k {k}");
        }
    }
}
