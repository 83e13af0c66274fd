// The gate and up projections of one row of `x` (n == 1) and the gated activation in one
// dispatch, without shared memory (the Rows family, as rows.wgsl with RB rows per invocation
// and XB = 1): `O[r] = act(gate_r . x) * (up_r . x)`, the gate read through `unit0`, the up
// projection through `unit1` (see wgsl.rs). `prm(3)` units per row, `prm(7)` the activation
// (see glu_act.wgsl), `prm(8)` rows.
@compute @workgroup_size(64)
fn k_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) li: u32) {
    let g = (wid.x + wid.y * nwg.x) * 64u + li;
    let upr = prm(3);
    let rows = prm(8);
    let r0 = g * RB;
    if (r0 >= rows) { return; }
//#for r
    let rr{r} = min(r0 + {r}u, rows - 1u);
    var a{r} = vec4<f32>(0.0);
    var b{r} = vec4<f32>(0.0);
//#end
    for (var u = 0u; u < upr; u++) {
        let p = unit_pos0(u);
        let xl = xload(0u, p.x);
        let xh = xload(0u, p.y);
//#for r
        let w{r} = unit0(rr{r}, u);
        a{r} += w{r}.lo * xl + w{r}.hi * xh;
        let v{r} = unit1(rr{r}, u);
        b{r} += v{r}.lo * xl + v{r}.hi * xh;
//#end
    }
//#for r
    if (r0 + {r}u < rows) {
        O[r0 + {r}u] = glu_act(dot(a{r}, vec4<f32>(1.0)), prm(7)) * dot(b{r}, vec4<f32>(1.0));
    }
//#end
}
