//! The Rust example of the root README ("## The library") compiles and runs.
//!
//! The body of `readme_example` below is the README's code block with its two absolute paths
//! made parameters; `the_readme_block_is_this_example` fails when the two drift apart.

use std::path::Path;

const README: &str = include_str!("../../README.md");
const THIS_FILE: &str = include_str!("readme_example.rs");

// BEGIN README EXAMPLE
#[rustfmt::skip]
fn readme_example(show: &str, renders: &str) -> capsa::Result<()> {
    use capsa::{BumpOptions, Section, Store, StoreOptions};

    let store = Store::init(show, StoreOptions::default())?;   // or Store::open
    let capsule = store.create_capsule("656796239c1b981568180614")?;
    let v1 = capsule.bump(BumpOptions { comment: Some("layout".into()), ..Default::default() })?;
    v1.publish(renders, None)?;        // publishes/plate/plate.1001.exr …
    v1.seal()?;
    assert_eq!(capsule.latest_published()?.unwrap().version_str(), "v001");
    for seq in v1.sequences(Section::Publishes)? {
        println!("{} missing {}", seq, seq.missing());
    }
    Ok(())
}
// END README EXAMPLE

/// The README's block as it would read inside `readme_example`.
fn readme_block() -> Vec<String> {
    let section = &README[README.find("## The library").expect("a Library section")..];
    let start = section.find("```rust\n").expect("a rust block") + "```rust\n".len();
    let block = &section[start..start + section[start..].find("```").unwrap()];
    block
        .lines()
        .filter(|l| !l.starts_with("# "))
        .map(|l| {
            l.replace("\"/mnt/show\"", "show")
                .replace("\"/renders/plate.####.exr\"", "renders")
        })
        .collect()
}

/// The body of `readme_example` in this file, dedented, without its `Ok(())`.
fn example_body() -> Vec<String> {
    let begin = THIS_FILE.find("// BEGIN README EXAMPLE").unwrap();
    let end = THIS_FILE.find("// END README EXAMPLE").unwrap();
    let lines: Vec<&str> = THIS_FILE[begin..end].lines().collect();
    // Skip the marker, `#[rustfmt::skip]` and the `fn` line; drop the closing `Ok(())` and `}`.
    lines[3..lines.len() - 2]
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l).to_string())
        .collect()
}

#[test]
fn the_readme_block_is_this_example() {
    assert_eq!(
        readme_block(),
        example_body(),
        "README.md's Rust example and core/tests/readme_example.rs differ"
    );
}

#[test]
fn the_readme_example_runs() {
    let dir = tempfile::tempdir().unwrap();
    let renders = dir.path().join("renders");
    std::fs::create_dir(&renders).unwrap();
    for f in [1001, 1002, 1004] {
        std::fs::write(renders.join(format!("plate.{f}.exr")), b"pixels").unwrap();
    }
    let show = dir.path().join("show");
    readme_example(
        show.to_str().unwrap(),
        renders.join("plate.####.exr").to_str().unwrap(),
    )
    .unwrap();
    assert!(Path::new(&show)
        .join("656796239c1b981568180614/v001/publishes/plate/plate.1004.exr")
        .is_file());
}
