//! The vendored fixtures are a verbatim copy of `../shared/fixtures/admission-reviews/`.

mod common;

use std::path::Path;

use common::fixtures::files_under;

#[test]
fn vendored_fixtures_match_shared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let vendored = files_under(&root.join("tests/fixtures/admission-reviews"));
    assert!(vendored.len() > 40, "vendored fixtures present");
    let shared = root.join("../shared/fixtures/admission-reviews");
    if !shared.is_dir() {
        // CI always has shared/ beside the checkout: there, its absence is a failure.
        assert!(std::env::var_os("CI").is_none(), "CI is set but {} is missing", shared.display());
        eprintln!("SKIPPED vendored_fixtures_match_shared: no ../shared beside this checkout to compare with");
        return;
    }
    let shared = files_under(&shared);
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&vendored), names(&shared), "file sets differ: copy shared/fixtures/admission-reviews again");
    for ((path, a), (_, b)) in vendored.iter().zip(&shared) {
        assert!(a == b, "{path} differs from shared");
    }
}
