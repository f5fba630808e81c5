//! Architecture invariants that the compiler cannot see, checked by reading the source tree.
//! Each test names the ARCHITECTURE.md invariant it backs.

use std::fs;
use std::path::{Path, PathBuf};

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates dir").to_path_buf()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out
}

/// The `[dependencies]` table of a crate's Cargo.toml, as text.
fn dependencies(krate: &str) -> String {
    let toml = fs::read_to_string(crates_dir().join(krate).join("Cargo.toml")).unwrap();
    let start = toml.find("[dependencies]").map(|i| i + "[dependencies]".len()).unwrap_or(0);
    let rest = &toml[start..];
    rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
}

/// "jobline-core does no I/O and depends on no async runtime, database or web crate."
#[test]
fn core_depends_on_no_runtime_database_or_web_crate() {
    let deps = dependencies("jobline-core");
    for banned in ["tokio", "sqlx", "axum", "hyper", "tower", "reqwest", "async-trait"] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "jobline-core must not depend on {banned}"
        );
    }
    for f in rust_files(&crates_dir().join("jobline-core/src")) {
        let src = fs::read_to_string(&f).unwrap();
        for io in ["std::fs", "std::net", "std::process", "std::io::"] {
            assert!(!src.contains(io), "{} uses {io}", f.display());
        }
    }
}

/// "Only jobline-store contains SQL." (The testkit and the benchmark are tools: the testkit
/// creates and drops test databases, the benchmark measures the raw-SQL ceiling.)
#[test]
fn only_the_store_contains_sql() {
    let exempt = ["jobline-store", "jobline-testkit", "jobline-bench"];
    for entry in fs::read_dir(crates_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if exempt.contains(&name.as_str()) {
            continue;
        }
        assert!(!dependencies(&name).contains("sqlx"), "{name} depends on sqlx");
        for f in rust_files(&entry.path().join("src")) {
            let src = fs::read_to_string(&f).unwrap();
            for sql in ["sqlx::", "SELECT ", "UPDATE jobs", "INSERT INTO", "DELETE FROM"] {
                assert!(!src.contains(sql), "{} contains SQL ({sql:?})", f.display());
            }
        }
    }
}

/// "jobline-worker::runtime knows no dialect and no concrete job kind."
#[test]
fn runtime_knows_no_dialect_or_concrete_kind() {
    let dir = crates_dir().join("jobline-worker/src");
    for file in ["runtime.rs", "context.rs", "handler.rs", "breakpoints.rs"] {
        let src = fs::read_to_string(dir.join(file)).unwrap().to_lowercase();
        for word in ["pxm", "promotion", "zuora", "crate::jobs", "noop", "sleep::"] {
            assert!(!src.contains(word), "{file} mentions {word:?}");
        }
    }
}

/// "jobline-http never decides a status code outside its dialect's error.rs."
#[test]
fn dialects_decide_status_codes_only_in_error_rs() {
    let http = crates_dir().join("jobline-http/src");
    for dialect in ["pxm", "promotions", "zuora"] {
        for f in rust_files(&http.join(dialect)) {
            if f.file_name().is_some_and(|n| n == "error.rs") {
                continue;
            }
            let src = fs::read_to_string(&f).unwrap();
            assert!(!src.contains("StatusCode::"), "{} picks a status code", f.display());
        }
    }
}

/// "Internal types are not Serialize": domain and store types never go on the wire directly;
/// each dialect converts them into its own DTOs.
#[test]
fn domain_and_store_types_are_not_serialize() {
    for krate in ["jobline-core", "jobline-store"] {
        for f in rust_files(&crates_dir().join(krate).join("src")) {
            let src = fs::read_to_string(&f).unwrap();
            assert!(!src.contains("Serialize"), "{} derives or uses Serialize", f.display());
        }
    }
}
