// `D[doff + g] = S[soff + g]`. `prm(0)`: length, `prm(1)`: soff, `prm(2)`: doff.
fn op(g: u32) {
    if (g < prm(0)) { D[prm(2) + g] = S[prm(1) + g]; }
}
