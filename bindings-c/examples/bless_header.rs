//! Rewrite `include/capsa.h` from the sources (`make bless-header`). The drift test
//! (`tests/header.rs`) fails until the regenerated header is committed.

#[path = "../tests/header_gen/mod.rs"]
mod header_gen;

fn main() {
    let path = header_gen::committed_path();
    std::fs::write(&path, header_gen::generate()).expect("write include/capsa.h");
    println!("wrote {}", path.display());
}
