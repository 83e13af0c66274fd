// First pass of a top-k: the order key of the maximum of every chunk of `2^prm(3)` elements
// of the row (`prm(0)` offset, `prm(1)` width) into `M`, one invocation per chunk (`prm(4)`
// chunks). A streaming pass: no shared memory, no barriers.
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let t = (wid.x + wid.y * nwg.x) * 64u + li;
    if (t < prm(4)) {
        let lo = t << prm(3);
        let hi = min(lo + (1u << prm(3)), prm(1));
        var mx = 0u;
        for (var e = lo; e < hi; e++) { mx = max(mx, okey(e)); }
        M[t] = mx;
    }
}
