// `D`, half-precision pairs packed in words, from `S`: word `prm(2) + g` holds elements
// `prm(1) + 2g` and `prm(1) + 2g + 1`. `prm(0)`: words.
fn op(g: u32) {
    if (g < prm(0)) { D[prm(2) + g] = pack_halves(S[prm(1) + 2u * g], S[prm(1) + 2u * g + 1u]); }
}
