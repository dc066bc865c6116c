//! Runs every shared conformance file against core.

use capsa_tests::conformance::{conformance_dir, load, run_suite};

#[test]
fn every_conformance_file_passes() {
    let mut files: Vec<String> = std::fs::read_dir(conformance_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    for topic in ["ids", "versions", "store", "seq", "staging", "archive"] {
        assert!(
            files.contains(&format!("{topic}.json")),
            "{topic}.json missing: {files:?}"
        );
    }
    let mut failures = Vec::new();
    let mut scenarios = 0;
    for f in &files {
        let suite = load(f);
        scenarios += suite.scenarios.len();
        failures.extend(run_suite(&suite));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(scenarios > 20, "only {scenarios} scenarios ran");
}

#[test]
fn the_runner_catches_a_wrong_expectation() {
    let suite: capsa_tests::conformance::Suite = serde_json::from_str(
        r#"{"topic":"self","scenarios":[
            {"name":"wrong","steps":[{"call":"version.parse","args":{"value":"v002"},"expect":{"number":3}}]},
            {"name":"wrong code","steps":[{"call":"id.parse","args":{"value":"../x"},"error":"NOT_FOUND"}]},
            {"name":"missing error","steps":[{"call":"id.parse","args":{"value":"ok"},"error":"INVALID_NAME"}]},
            {"name":"wrong status","steps":[{"call":"staging.create","args":{"name":"web","tag":"1"},"expect":{"status":"Failure"}}]},
            {"name":"a secret shown","steps":[
                {"call":"staging.create","args":{"name":"web","tag":"1","overrides":[{"key":"K","value":"visible"}]}},
                {"call":"outputs.search","args":{"text":"visible"},"expect":{"found":false}}]},
            {"name":"an intact archive","steps":[
                {"call":"store.create_capsule","args":{"id":"shot"}},
                {"call":"archive.create","args":{"id":"shot","dest":"a.zip"}},
                {"call":"archive.verify","args":{"path":"a.zip"},"error":"CORRUPT"}]},
            {"name":"unknown call","steps":[{"call":"staging.no_such_call","args":{}}]}
        ]}"#,
    )
    .unwrap();
    assert_eq!(run_suite(&suite).len(), 7);
}
