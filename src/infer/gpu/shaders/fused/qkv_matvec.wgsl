// The query, key and value projections of one row of `x` (n == 1) in one dispatch, as
// matvec.wgsl: `TPR` lanes per row, `256 / TPR` rows per workgroup over the rows of weight 0,
// then 1, then 2 (a workgroup may span two weights); weight `m` is read through its own
// decoder `unit{m}` (see wgsl.rs) and written to `O{m}`. `prm(3)` units per row (the three
// share their columns), `prm(8 + m)` rows of weight `m`.
const RPW: u32 = 256u / TPR;
var<workgroup> red: array<f32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let lane = li % TPR;
    var rl = wg * RPW + li / TPR;
    let upr = prm(3);
    var sel = 3u;
    if (rl < prm(8)) { sel = 0u; } else {
        rl -= prm(8);
        if (rl < prm(9)) { sel = 1u; } else { rl -= prm(9); if (rl < prm(10)) { sel = 2u; } }
    }
    var acc = 0.0;
//#for m
    if (sel == {m}u) {
        for (var u = lane; u < upr; u += TPR) {
            let w = unit{m}(rl, u);
            acc += dot(w.lo, xload(0u, w.e0)) + dot(w.hi, xload(0u, w.e1));
        }
    }
//#end
    red[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[li] += red[li + s]; }
        workgroupBarrier();
    }
    if (lane == 0u) {
//#for m
        if (sel == {m}u) { O{m}[prm(20u + {m}u) + rl] = red[li]; }
//#end
    }
}
