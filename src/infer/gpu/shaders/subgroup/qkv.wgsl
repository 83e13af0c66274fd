// The query, key and value projections of one row of `x` (n == 1) in one dispatch, as
// subgroup/matvec.wgsl: the workgroups' rows run over the rows of weight 0, then 1, then 2 (a
// workgroup may span two weights); weight `m` is read through its own decoder `unit{m}` (see
// wgsl.rs) and written to `O{m}`. `prm(3)` units per row (the three share their columns),
// `prm(8 + m)` rows of weight `m`.
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32,
          @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let slot = subgroup_slot(lane, li);
    let upr = prm(3);
    for (var k = slot.x; k < RPW; k += slot.y) {
        var rl = wg * RPW + k;
        var sel = 3u;
        if (rl < prm(8)) { sel = 0u; } else {
            rl -= prm(8);
            if (rl < prm(9)) { sel = 1u; } else { rl -= prm(9); if (rl < prm(10)) { sel = 2u; } }
        }
        if (sel == 3u) { break; }
        var acc = 0.0;
//#for m
        if (sel == {m}u) {
            for (var u = lane; u < upr; u += sgs) {
                let w = unit{m}(rl, u);
                acc += dot(w.lo, xload(0u, w.e0)) + dot(w.hi, xload(0u, w.e1));
            }
        }
//#end
        let s = subgroupAdd(acc);
        if (lane == slot.z) {
//#for m
            if (sel == {m}u) { O{m}[prm(20u + {m}u) + rl] = s; }
//#end
        }
    }
}
