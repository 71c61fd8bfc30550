//! Generates the protobuf types and tonic services from the top-level `proto/` folder.
//! protoc comes from the `protoc-bin-vendored` crate, so nothing is installed by hand.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not baked in when it is compiled: a target folder shared
    // between clones at different paths reuses the compiled script.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "envelope", "case", "ingest", "query", "care", "grant", "catalog", "feed", "audit", "admin",
    ]
    .map(|name| root.join(format!("gov/hub/v1/{name}.proto")));
    let include = protoc_bin_vendored::include_path()?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("gov_hub_v1_descriptor.bin"))
        .compile_with_config(config, &files, &[root.clone(), include])?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
