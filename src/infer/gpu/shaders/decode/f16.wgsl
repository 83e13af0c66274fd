// F16 rows that are whole units (columns a multiple of 8).
fn unit(rl: u32, u: u32) -> Unit {
    let w = (rl * prm(2) + 8u * u) >> 1u;
    let lo = vec4<f32>(unpack2x16float(W[w]), unpack2x16float(W[w + 1u]));
    let hi = vec4<f32>(unpack2x16float(W[w + 2u]), unpack2x16float(W[w + 3u]));
    return Unit(lo, hi, 8u * u, 8u * u + 4u);
}
