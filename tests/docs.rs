//! The docs' reference tables, checked against the code they mirror, and every link in the
//! README and docs/ checked to lead somewhere.
//!
//! Why a test: a table copied from code drifts the day the code changes and nobody reads the
//! table again. Each table checked here is marked in its file by an HTML comment naming this
//! test, and is the first table after that comment:
//!
//! - docs/operations.md, the settings: every env var `coupon-issuer serve --help` shows, and no
//!   other. `LAB_*` settings are left out of the comparison: the strategy lab is moving out of
//!   `serve` into its own binary (`coupon-lab`), and this check holds on either side of that.
//! - docs/api.md, the error codes and their statuses: every code `ApiError` can answer, as the
//!   OpenAPI document lists them (`every_error`, an exhaustive match over the variants).
//! - docs/architecture.md, the Redis keys: the example column, built with `issuing::Keys`.
//!
//! Plain std parsing, no Markdown crate: the tables are simple and the parser is the contract.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use actix_web::ResponseError;
use chrono::NaiveDate;
use coupon_issuer::domain::{Bucket, EventId};
use coupon_issuer::http::openapi::every_error;
use coupon_issuer::issuing::Keys;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows (cells trimmed, header and separator dropped) of the first table after the line
/// holding `marker`.
fn table_after(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let start = doc
        .lines()
        .position(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no line containing {marker:?}"));
    let rows: Vec<Vec<String>> = doc
        .lines()
        .skip(start + 1)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(cells)
        .collect();
    assert!(rows.len() > 2, "no table after {marker:?}");
    rows.into_iter().skip(2).collect()
}

/// A table row's cells; `\|` inside a cell is a literal bar, not a column break.
fn cells(line: &str) -> Vec<String> {
    let line = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => cells.last_mut().unwrap().push(chars.next().unwrap()),
            '|' => cells.push(String::new()),
            c => cells.last_mut().unwrap().push(c),
        }
    }
    cells.into_iter().map(|c| c.trim().to_string()).collect()
}

/// The `code` spans of a cell, without their backticks.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The env vars a `--help` text shows, as clap prints them: `[env: NAME=value]` or `[env: NAME]`.
fn env_vars_in_help(help: &str) -> BTreeSet<String> {
    help.split("[env: ")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn the_settings_table_lists_exactly_the_env_vars_of_serve() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coupon-issuer"))
        .args(["serve", "--help"])
        .output()
        .expect("run coupon-issuer serve --help");
    assert!(out.status.success(), "serve --help failed: {out:?}");
    let not_lab = |name: &String| !name.starts_with("LAB_");
    let help: BTreeSet<String> = env_vars_in_help(&String::from_utf8_lossy(&out.stdout))
        .into_iter()
        .filter(not_lab)
        .collect();
    assert!(
        help.contains("REDIS_URL"),
        "the --help parser found no env vars: {help:?}"
    );

    let doc = read("docs/operations.md");
    let table: BTreeSet<String> = table_after(&doc, "tests/docs.rs against `coupon-issuer serve --help`")
        .iter()
        .flat_map(|row| code_spans(&row[0]))
        .filter(|name| is_env_name(name))
        .filter(not_lab)
        .collect();

    let undocumented: Vec<_> = help.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&help).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/operations.md's settings table is out of step with `coupon-issuer serve --help`:\n  \
         in --help, not in the table: {undocumented:?}\n  in the table, not in --help: {unknown:?}"
    );
}

#[test]
fn the_error_code_table_lists_exactly_the_codes_the_api_answers() {
    // The strategy lab's own code leaves the service's ApiError with the lab (crates/lab).
    let lab = |code: &str| code.starts_with("lab_");
    let api: BTreeSet<(String, u16)> = every_error()
        .iter()
        .filter(|e| !lab(e.code()))
        .map(|e| (e.code().to_string(), e.status_code().as_u16()))
        .collect();

    let doc = read("docs/api.md");
    let table: BTreeSet<(String, u16)> = table_after(&doc, "tests/docs.rs against `ApiError`")
        .iter()
        .filter(|row| !lab(&code_spans(&row[0]).concat()))
        .map(|row| {
            let code = code_spans(&row[0]);
            assert_eq!(code.len(), 1, "one code per row: {row:?}");
            let status = row[1].parse().unwrap_or_else(|_| panic!("status of {row:?}"));
            (code[0].clone(), status)
        })
        .collect();

    let undocumented: Vec<_> = api.difference(&table).collect();
    let unknown: Vec<_> = table.difference(&api).collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/api.md's error codes are out of step with ApiError (code, status):\n  \
         answered, not in the table: {undocumented:?}\n  in the table, never answered: {unknown:?}"
    );
}

#[test]
fn the_redis_key_table_shows_the_keys_the_code_builds() {
    let keys = Keys::new("coupon");
    let event = EventId::parse("0b7e0c8e-2f4a-4e7b-9a51-3c1f6a2d9e10").unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
    let bucket = Bucket { event, shard: 1 };
    // In the table's order.
    let built = vec![
        keys.settings(event),
        keys.windows(event),
        keys.day_count(event, day),
        keys.day_users(event, day),
        keys.stream(event),
        keys.dead_letters(event),
        keys.settings(bucket),
        keys.day_count(bucket, day),
        keys.new_events(),
    ];

    let doc = read("docs/architecture.md");
    let table: Vec<String> = table_after(&doc, "tests/docs.rs: the example column")
        .iter()
        .map(|row| code_spans(&row[2]).concat())
        .collect();
    assert_eq!(
        table, built,
        "docs/architecture.md's Redis key table (example column) is out of step with src/issuing/keys.rs"
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The lines of a Markdown file outside fenced code blocks.
fn prose(doc: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    doc.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

fn anchors(doc: &str) -> BTreeSet<String> {
    prose(doc)
        .filter(|line| line.starts_with('#'))
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// Every `](target)` of a line: links and images.
fn link_targets(line: &str) -> Vec<String> {
    line.match_indices("](")
        .filter_map(|(i, _)| line[i + 2..].split_once(')').map(|(target, _)| target.to_string()))
        .collect()
}

#[test]
fn every_link_in_the_readme_and_docs_leads_somewhere() {
    let mut files = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let doc = std::fs::read_to_string(file).unwrap();
        let dir = file.parent().unwrap();
        for line in prose(&doc) {
            for target in link_targets(line) {
                if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, fragment) = match target.split_once('#') {
                    Some((path, fragment)) => (path, Some(fragment)),
                    None => (target.as_str(), None),
                };
                let resolved: &Path = if path.is_empty() { file } else { &dir.join(path) };
                if !resolved.exists() {
                    broken.push(format!("{}: {target} (no such file)", file.display()));
                    continue;
                }
                if let Some(fragment) = fragment
                    && resolved.extension().is_some_and(|e| e == "md")
                {
                    let target_doc = std::fs::read_to_string(resolved).unwrap();
                    if !anchors(&target_doc).contains(fragment) {
                        broken.push(format!("{}: {target} (no such heading)", file.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
