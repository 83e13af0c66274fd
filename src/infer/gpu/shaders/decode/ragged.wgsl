// Plain rows whose length is not a multiple of 8 (F32 or F16 through `welem`): one element at
// a time, columns past the row read as 0.
fn wval(rl: u32, c: u32) -> f32 {
    if (c >= prm(2)) { return 0.0; }
    let e = rl * prm(2) + c;
    return welem(e);
}
fn unit(rl: u32, u: u32) -> Unit {
    let c = 8u * u;
    let lo = vec4<f32>(wval(rl, c), wval(rl, c + 1u), wval(rl, c + 2u), wval(rl, c + 3u));
    let hi = vec4<f32>(wval(rl, c + 4u), wval(rl, c + 5u), wval(rl, c + 6u), wval(rl, c + 7u));
    return Unit(lo, hi, c, c + 4u);
}
