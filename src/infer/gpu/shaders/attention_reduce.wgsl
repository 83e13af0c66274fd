// The merge of flash-decoding's partial attentions (attention.wgsl, split variant): for query
// row and head `rh` and `vec4` `d` of the head, the `prm(7)` partial outputs `PO` rescaled to
// their common max by their maxima and sums `PML` (an empty range has sum 0 and max -3e38, so it
// weighs nothing), then normalized. Parameters as attention.wgsl.
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    let hd = prm(3);
    let v4 = (hd + 3u) / 4u;
    let parts = prm(7);
    if (g >= prm(0) * prm(1) * v4) { return; }
    let rh = g / v4;
    let d = g % v4;
    var mx = -3.0e38;
    for (var s = 0u; s < parts; s++) { mx = max(mx, PML[2u * (rh * parts + s)]); }
    var a = vec4<f32>(0.0);
    var ls = 0.0;
    for (var s = 0u; s < parts; s++) {
        let c = exp(PML[2u * (rh * parts + s)] - mx);
        a += c * PO[(rh * parts + s) * v4 + d];
        ls += c * PML[2u * (rh * parts + s) + 1u];
    }
    sto(rh * hd, d, a / ls);
}
