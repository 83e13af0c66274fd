// Embedding rows: one workgroup per id; parts that do not hold the id skip it. `prm(0)` ids,
// `prm(1)` rows in this part, `prm(2)` columns, `prm(3)` units per row, `prm(6)` first row of
// the part, `prm(7)` scale.
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let i = wid.x + wid.y * nwg.x;
    if (i >= prm(0)) { return; }
    let id = IDS[i];
    if (id < prm(6) || id - prm(6) >= prm(1)) { return; }
    let rl = id - prm(6);
    let off = i * prm(2);
    let scale = prmf(7);
    for (var u = li; u < prm(3); u += 64u) {
        let w = unit(rl, u);
        ostore(off, w.e0, scale * w.lo);
        ostore(off, w.e1, scale * w.hi);
    }
}
