// The gate and up projections of one row of `x` (n == 1) and the gated activation in one
// dispatch, as subgroup/matvec.wgsl with two sums per row: `O[r] = act(gate_r . x) * (up_r . x)`,
// the gate read through `unit0`, the up projection through `unit1` (see wgsl.rs). `prm(3)` units
// per row, `prm(7)` the activation (see glu_act.wgsl), `prm(8)` rows.
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32,
          @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let slot = subgroup_slot(lane, li);
    let rows = prm(8);
    let upr = prm(3);
    for (var k = slot.x; k < RPW; k += slot.y) {
        let rl = wg * RPW + k;
        if (rl >= rows) { break; }
        var acc = 0.0;
        var acc2 = 0.0;
        for (var u = lane; u < upr; u += sgs) {
            let w = unit0(rl, u);
            let v = unit1(rl, u);
            let xl = xload(0u, w.e0);
            let xh = xload(0u, w.e1);
            acc += dot(w.lo, xl) + dot(w.hi, xh);
            acc2 += dot(v.lo, xl) + dot(v.hi, xh);
        }
        let g = subgroupAdd(acc);
        let up = subgroupAdd(acc2);
        if (lane == slot.z) { O[rl] = glu_act(g, prm(7)) * up; }
    }
}
