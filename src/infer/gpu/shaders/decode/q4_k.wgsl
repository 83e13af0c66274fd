// Q4_K: super-blocks of 256 weights in 36 words: (f16 d, f16 dmin), 12 bytes of 6-bit scales
// and mins for 8 sub-blocks of 32, 32 words of nibbles; weight = d * sc * q - dmin * m.
fn unit_pos(u: u32) -> vec2<u32> {
    let uu = u & 31u;
    let e = (u >> 5u) * 256u + (uu >> 3u) * 64u + (uu & 7u) * 4u;
    return vec2<u32>(e, e + 32u);
}
fn kbyte(base: u32, i: u32) -> u32 { return (W[base + 1u + (i >> 2u)] >> ((i & 3u) * 8u)) & 0xffu; }
fn kscale_min(base: u32, j: u32) -> vec2<u32> {
    if (j < 4u) { return vec2<u32>(kbyte(base, j) & 63u, kbyte(base, j + 4u) & 63u); }
    return vec2<u32>(
        (kbyte(base, j + 4u) & 15u) | ((kbyte(base, j - 4u) >> 6u) << 4u),
        (kbyte(base, j + 4u) >> 4u) | ((kbyte(base, j) >> 6u) << 4u));
}
fn unit(rl: u32, u: u32) -> Unit {
    let b = rl * prm(4) + (u >> 5u);
    let uu = u & 31u;
    let base = prm(5) + b * 36u;
    let dm = unpack2x16float(W[base]);
    let d = dm.x;
    let dmin = dm.y;
    let c = uu >> 3u;
    let s0 = kscale_min(base, 2u * c);
    let s1 = kscale_min(base, 2u * c + 1u);
    let q = W[base + 4u + uu];
    let lo = (d * f32(s0.x)) * nib_lo(q) - vec4<f32>(dmin * f32(s0.y));
    let hi = (d * f32(s1.x)) * nib_hi(q) - vec4<f32>(dmin * f32(s1.y));
    let p = unit_pos(u);
    return Unit(lo, hi, p.x, p.y);
}
// The Rows kernels' block form (see rows.wgsl): block b of a row is units 4b..4b+3, half of the
// 8 words of nibbles of sub-blocks 2c (low nibbles) and 2c + 1 (high ones) of super-block b / 8,
// c = (b / 2) % 4; weight = d * sc * raw - dmin * m with that sub-block's (sc, m).
const BLOCKED: bool = true;
fn bpos(b: u32, k: u32) -> vec2<u32> {
    let e = (b >> 3u) * 64u + ((b >> 1u) & 3u) * 16u + (b & 1u) * 4u + k;
    return vec2<u32>(e, e + 8u);
}
fn bscale(rl: u32, b: u32) -> vec4<f32> {
    let base = prm(5) + (rl * prm(4) + (b >> 3u)) * 36u;
    let dm = unpack2x16float(W[base]);
    let c = (b >> 1u) & 3u;
    let s0 = vec2<f32>(kscale_min(base, 2u * c));
    let s1 = vec2<f32>(kscale_min(base, 2u * c + 1u));
    return vec4<f32>(dm.x * s0.x, -dm.y * s0.y, dm.x * s1.x, -dm.y * s1.y);
}
fn uraw(rl: u32, b: u32, k: u32) -> Unit {
    let q = W[prm(5) + (rl * prm(4) + (b >> 3u)) * 36u + 4u + (b & 7u) * 4u + k];
    return Unit(nib_lo(q), nib_hi(q), 0u, 0u);
}
