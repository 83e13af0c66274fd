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
    // Whole blocks with their scales applied once where the format has them (see rows.wgsl).
    let whole = select(0u, upr >> 2u, BLOCKED0);
    for (var b = 0u; b < whole; b++) {
        var xsl = vec4<f32>(0.0);
        var xsh = vec4<f32>(0.0);
//#for r
        let s{r} = bscale0(rr{r}, b);
        let t{r} = bscale1(rr{r}, b);
        var qal{r} = vec4<f32>(0.0);
        var qah{r} = vec4<f32>(0.0);
        var qbl{r} = vec4<f32>(0.0);
        var qbh{r} = vec4<f32>(0.0);
//#end
//#for k
        {
            let p = bpos0(b, {k}u);
            let xl = xload4(p.x);
            let xh = xload4(p.y);
            xsl += xl;
            xsh += xh;
//#for r
            let w{r} = uraw0(rr{r}, b, {k}u);
            qal{r} += w{r}.lo * xl;
            qah{r} += w{r}.hi * xh;
            let v{r} = uraw1(rr{r}, b, {k}u);
            qbl{r} += v{r}.lo * xl;
            qbh{r} += v{r}.hi * xh;
//#end
        }
//#end
//#for r
        a{r} += s{r}.x * qal{r} + s{r}.y * xsl + s{r}.z * qah{r} + s{r}.w * xsh;
        b{r} += t{r}.x * qbl{r} + t{r}.y * xsl + t{r}.z * qbh{r} + t{r}.w * xsh;
//#end
    }
    for (var u = whole * 4u; u < upr; u++) {
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
