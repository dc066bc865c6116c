//! Runs every step of `tests/conformance/seq.json` through [`capsa_tests::conformance_seq::call`].

use std::path::Path;

use serde_json::Value;

#[test]
fn seq_json_passes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/seq.json");
    let text = std::fs::read_to_string(&path).expect("read seq.json");
    let doc: Value = serde_json::from_str(&text).expect("seq.json is JSON");
    assert_eq!(doc["topic"], "seq");
    let scenarios = doc["scenarios"].as_array().expect("scenarios");
    assert!(scenarios.len() >= 25, "only {} scenarios", scenarios.len());
    let mut failures = Vec::new();
    let mut steps_run = 0;
    for scenario in scenarios {
        let name = scenario["name"].as_str().expect("scenario name");
        for (i, step) in scenario["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .enumerate()
        {
            steps_run += 1;
            let call = step["call"].as_str().expect("call");
            let empty = Value::Object(Default::default());
            let args = step.get("args").unwrap_or(&empty);
            let Some(result) = capsa_tests::conformance_seq::call(call, args) else {
                failures.push(format!("{name} step {i}: {call} is not a seq call"));
                continue;
            };
            let problem = match (result, step.get("expect"), step.get("error")) {
                (Ok(_), _, Some(code)) => Some(format!("succeeded, expected error {code}")),
                (Err(e), _, Some(code)) => (code.as_str() != Some(e.code().as_str()))
                    .then(|| format!("error {} ({e}), expected {code}", e.code())),
                (Err(e), _, None) => Some(format!("failed: {} ({e})", e.code())),
                (Ok(got), Some(expect), None) => {
                    let expect = expect.as_object().expect("expect is an object");
                    let wrong: Vec<String> = expect
                        .iter()
                        .filter(|(k, v)| got.get(k.as_str()) != Some(v))
                        .map(|(k, v)| {
                            format!(
                                "{k}: got {}, expected {v}",
                                got.get(k.as_str()).unwrap_or(&Value::Null)
                            )
                        })
                        .collect();
                    (!wrong.is_empty()).then(|| wrong.join("; "))
                }
                (Ok(_), None, None) => None,
            };
            if let Some(p) = problem {
                failures.push(format!("{name} step {i} ({call}): {p}"));
            }
        }
    }
    assert!(steps_run > 0);
    assert!(
        failures.is_empty(),
        "{} failing steps:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
