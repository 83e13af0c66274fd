// The gate and up projections of one row of `x` (n == 1) and the gated activation in one
// dispatch, as matvec.wgsl (`TPR` lanes per row, a tree reduction of both sums):
// `O[r] = act(gate_r . x) * (up_r . x)`, the gate read through `unit0`, the up projection
// through `unit1` (see wgsl.rs). `prm(3)` units per row, `prm(7)` the activation (see
// glu_act.wgsl), `prm(8)` rows.
const RPW: u32 = 256u / TPR;
var<workgroup> red: array<f32, 256>;
var<workgroup> red2: array<f32, 256>;
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let lane = li % TPR;
    let rl = wg * RPW + li / TPR;
    let rows = prm(8);
    let upr = prm(3);
    var acc = 0.0;
    var acc2 = 0.0;
    if (rl < rows) {
        for (var u = lane; u < upr; u += TPR) {
            let w = unit0(rl, u);
            let v = unit1(rl, u);
            let xl = xload(0u, w.e0);
            let xh = xload(0u, w.e1);
            acc += dot(w.lo, xl) + dot(w.hi, xh);
            acc2 += dot(v.lo, xl) + dot(v.hi, xh);
        }
    }
    red[li] = acc;
    red2[li] = acc2;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) { red[li] += red[li + s]; red2[li] += red2[li + s]; }
        workgroupBarrier();
    }
    if (lane == 0u && rl < rows) { O[rl] = glu_act(red[li], prm(7)) * red2[li]; }
}
