//! Fuzz target: what a control script prints is untrusted. Octopod's `info` CSV parser takes
//! any text without panicking, refuses what is not two columns with INVALID_ARGUMENT, and reads
//! back every pair it is given, quoted as a script would quote it.
mod fuzz_support;

use capsa::staging::script::parse_info_csv;
use capsa::ErrorCode;
use proptest::prelude::*;

#[test]
fn info_output_parses_or_refuses_cleanly() {
    let input = prop_oneof![
        any::<String>(),
        "[a-z\",\r\n ]{0,40}",
        "([a-z]{1,6},https?://[a-z.]{1,12}\r?\n){0,4}",
    ];
    fuzz_support::run("info_csv", 2048, input, |text| {
        match parse_info_csv(&text) {
            Ok(urls) => {
                let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
                prop_assert_eq!(urls.len(), lines);
            }
            Err(e) => {
                prop_assert_eq!(e.code(), ErrorCode::InvalidArgument);
                prop_assert!(!e.to_string().contains('\n'), "one line: {e}");
            }
        }
        Ok(())
    });
}

fn quoted(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

#[test]
fn every_pair_a_script_prints_reads_back() {
    // Names and URLs without line breaks or surrounding blanks (the parser trims fields).
    let field = "[^\r\n\"]{0,3}[a-zA-Z0-9:/.,\"]{1,12}";
    let pairs = proptest::collection::vec((field, field), 0..6);
    fuzz_support::run("info_csv_pairs", 1024, pairs, |pairs| {
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, u)| (n.trim().to_string(), u.trim().to_string()))
            .filter(|(n, u)| !n.is_empty() && !u.is_empty())
            .collect();
        let text: String = pairs
            .iter()
            .map(|(n, u)| format!("{},{}\n", quoted(n), quoted(u)))
            .collect();
        let urls = parse_info_csv(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<(String, String)> = urls.into_iter().map(|u| (u.name, u.url)).collect();
        prop_assert_eq!(got, pairs);
        Ok(())
    });
}
