// The entry point of the element-wise kernels: `op(g)` (one of ops/*.wgsl) for every global
// element index `g`.
@compute @workgroup_size(256)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 256u + li;
    op(g);
}
