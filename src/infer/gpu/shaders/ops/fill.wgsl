// `O[g] = 0` (u32 view, so it zeroes f32 and id buffers alike). `prm(0)`: length.
fn op(g: u32) {
    if (g < prm(0)) { O[g] = 0u; }
}
