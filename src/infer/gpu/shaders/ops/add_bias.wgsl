// `X[g] += B[g % dim]`. `prm(0)`: n * dim, `prm(1)`: dim.
fn op(g: u32) {
    if (g < prm(0)) { X[g] = X[g] + B[g % prm(1)]; }
}
