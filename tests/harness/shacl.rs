//! Validation of a DCAT-AP export against the official DCAT-AP 3.0.1 shapes, with pyshacl
//! as the setup installs it (`deploy/.tools/bin/pyshacl`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

/// Validates `document` (`format`: `turtle` or `json-ld`) against the mandatory shapes and
/// the class ranges together (pyshacl's `-e` would read the ranges as ontology, not as shapes).
/// Returns whether it conforms, and pyshacl's report.
pub fn dcat_ap_conforms(document: &str, format: &str) -> (bool, String) {
    let repo = repo();
    let pyshacl = repo.join("deploy/.tools/bin/pyshacl");
    assert!(
        pyshacl.is_file(),
        "pyshacl is not installed at {}: run `bash deploy/setup.sh pyshacl`",
        pyshacl.display()
    );
    let official = repo.join("deploy/dcat-ap-3.0.1");
    let read = |name: &str| std::fs::read_to_string(official.join(name)).expect("official shapes");
    let dir = tempfile::tempdir().expect("temp dir");
    let shapes = dir.path().join("shapes-and-range.ttl");
    std::fs::write(
        &shapes,
        format!("{}\n{}", read("shapes.ttl"), read("range.ttl")),
    )
    .expect("write shapes");
    let data = dir.path().join("catalog");
    std::fs::write(&data, document).expect("write document");
    let output = Command::new(&pyshacl)
        .arg("-s")
        .arg(&shapes)
        .args(["-df", format])
        .arg(&data)
        .output()
        .expect("pyshacl runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let conforms = output.status.code() == Some(0) && report.contains("Conforms: True");
    (conforms, report)
}
