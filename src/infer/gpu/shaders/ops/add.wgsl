// `D[g] += S[g]`. `prm(0)`: length.
fn op(g: u32) {
    if (g < prm(0)) { D[g] = D[g] + S[g]; }
}
