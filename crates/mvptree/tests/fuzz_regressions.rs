//! Inputs found by the fuzz targets in `fuzz/` (see `scripts/fuzz.sh`), kept as plain tests so
//! they run with every `cargo test`; and a check that the committed seed corpus still reads.

use std::path::Path;

use mvptree::Index;

/// The seeds of the `read_from` target are valid indexes: a format change that made them
/// unreadable would leave the fuzzer stuck at the header. Regenerate them with
/// `python3 fuzz/seeds/make_seeds.py`.
#[test]
fn read_from_seeds_are_valid_indexes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/read_from");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/seeds/read_from") {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let index = Index::read_from(bytes.as_slice())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut again = Vec::new();
        index.write_to(&mut again).unwrap();
        assert_eq!(
            Index::read_from(again.as_slice()).unwrap().total_len(),
            index.total_len()
        );
        seen += 1;
    }
    assert!(seen >= 3, "seeds missing from {}", dir.display());
}
