//! Compiled test contracts committed next to their Solidity sources (tests/fixtures): each
//! checked against what its source compiles to with solc-js from tests/js (the pinned
//! compiler and settings of `tests/js/build-fixture.mjs`).

use crate::repo_root;
use std::process::Command;

/// Fails unless `tests/fixtures/<fixture>/<name>.json` is what `<name>.sol` compiles to.
pub fn assert_built_from_source(fixture: &str, name: &str) {
    let js = repo_root().join("tests/js");
    assert!(js.join("node_modules/solc").exists(), "solc-js missing: run `npm ci --prefix tests/js`");
    let out = Command::new("node")
        .args(["build-fixture.mjs", fixture, name, "--check"])
        .current_dir(&js)
        .output()
        .expect("node");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
