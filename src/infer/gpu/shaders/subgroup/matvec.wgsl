// Matrix-vector product (n == 1) with subgroup reductions: 128 invocations per workgroup,
// `RPW` rows per workgroup (see slot.wgsl). The lanes of a subgroup stride over the row's units
// (neighbouring lanes read neighbouring words), each unit decoded in registers, and
// `subgroupAdd` sums their partial dot products: no shared memory and no barrier per row.
// Weight parameters as matvec.wgsl: `prm(1)` rows in this part, `prm(3)` units per row,
// `prm(6)` first row of the part.
@compute @workgroup_size(128)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32,
          @builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgs: u32) {
    let wg = wid.x + wid.y * nwg.x;
    let slot = subgroup_slot(lane, li);
    let rows = prm(1);
    let upr = prm(3);
    for (var k = slot.x; k < RPW; k += slot.y) {
        // Uniform in the subgroup: every lane has the same `k`.
        let rl = wg * RPW + k;
        if (rl >= rows) { break; }
        var acc = 0.0;
        for (var u = lane; u < upr; u += sgs) {
            let w = unit(rl, u);
            acc += dot(w.lo, xload(0u, w.e0)) + dot(w.hi, xload(0u, w.e1));
        }
        let s = subgroupAdd(acc);
        if (lane == slot.z) { O[prm(6) + rl] = s; }
    }
}
