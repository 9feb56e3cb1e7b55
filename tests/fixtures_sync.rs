//! The vendored fixtures are a verbatim copy of `../shared/fixtures/admission-reviews/`.

use std::path::{Path, PathBuf};

fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push((path.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn vendored_fixtures_match_shared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vendored = files(&root.join("tests/fixtures/admission-reviews"));
    assert!(vendored.len() > 40, "vendored fixtures present");
    let shared = root.join("../shared/fixtures/admission-reviews");
    if !shared.is_dir() {
        eprintln!("no ../shared beside the checkout; nothing to compare");
        return;
    }
    let shared = files(&shared);
    let names = |v: &[(PathBuf, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&vendored), names(&shared), "file sets differ: copy shared/fixtures/admission-reviews again");
    for ((path, a), (_, b)) in vendored.iter().zip(&shared) {
        assert!(a == b, "{} differs from shared", path.display());
    }
}
