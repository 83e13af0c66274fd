// The order key of row element `e` (`X[prm(0) + e]`): larger key, larger value; `-0.0` as
// `+0.0`; every NaN 0, below `-inf` (`crate::infer::compute::order_key`). Branch-free.
fn okey(e: u32) -> u32 {
    var b = bitcast<u32>(X[prm(0) + e]);
    b = select(b, 0u, b == 0x80000000u);
    let key = select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
    return select(key, 0u, (b & 0x7fffffffu) > 0x7f800000u);
}
