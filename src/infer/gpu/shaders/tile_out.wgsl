// The output tile of tiled.wgsl and tiled_f16.wgsl: workgroup `wg` computes weight rows
// `base.x`..+63 for rows `base.y`..+31 of x, and invocation `li` 4 weight rows (`li & 15` of
// the tile's 16 groups of 4) for 2 rows of x (`li >> 4` of its 16 pairs).
fn tile_base(wg: u32) -> vec2<u32> {
    let tiles_r = (prm(1) + 63u) / 64u;
    return vec2<u32>((wg % tiles_r) * 64u, (wg / tiles_r) * 32u);
}
// Stores invocation `li`'s sums: `acc0` for the first of its rows of x, `acc1` the second.
fn tile_store(base: vec2<u32>, li: u32, acc0: vec4<f32>, acc1: vec4<f32>) {
    let os = prm(7);
    let i0 = base.y + (li >> 4u) * 2u;
    for (var j = 0u; j < 4u; j++) {
        let r = base.x + (li & 15u) * 4u + j;
        if (r < prm(1)) {
            if (i0 < prm(0)) { O[i0 * os + prm(6) + r] = acc0[j]; }
            if (i0 + 1u < prm(0)) { O[(i0 + 1u) * os + prm(6) + r] = acc1[j]; }
        }
    }
}
