//! Compiles `infoshare/v1/*.proto` with protox (pure Rust), so a fresh machine needs no `protoc`.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["infoshare/v1", "infoshare/bench/v1"] {
        // The directory too, so that a new file is picked up.
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
        files.extend(
            std::fs::read_dir(root.join(dir))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "proto")),
        );
    }
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    // Kept for server reflection; `compile_fds` does not write it itself.
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("infoshare_descriptor.bin"), fds.encode_to_vec())?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        .compile_fds(fds)?;
    Ok(())
}
