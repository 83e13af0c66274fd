//! Writes the fuzzer's seed corpus into the folder given (created if needed): the hand-made valid
//! headers and every corrupt case of `hearth::gguf::corpus`, one file each, named after the case.
//! Generated at run time by `tools/fuzz.sh`, so no binary seeds are committed.

use std::path::PathBuf;

use hearth::gguf::corpus::{corrupt_cases, valid_samples};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .expect("usage: seed_corpus OUTPUT_DIR"),
    );
    std::fs::create_dir_all(&dir)?;
    let mut n = 0;
    for (name, bytes) in valid_samples() {
        std::fs::write(dir.join(format!("seed-valid-{name}")), bytes)?;
        n += 1;
    }
    for case in corrupt_cases() {
        std::fs::write(dir.join(format!("seed-corrupt-{}", case.name)), &case.bytes)?;
        n += 1;
    }
    println!("wrote {n} seeds to {}", dir.display());
    Ok(())
}
