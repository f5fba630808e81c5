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

/// "jobline-http never decides a status code outside its dialect's error.rs." `ep`, shared by
/// the two Elastic Path dialects, keeps its codes (errors and the 201/204 answers) in its own
/// `error.rs` too.
#[test]
fn dialects_decide_status_codes_only_in_error_rs() {
    let http = crates_dir().join("jobline-http/src");
    for dialect in ["pxm", "promotions", "zuora", "ep", "native"] {
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

/// "jobline-http never depends on jobline-worker": the edge and the worker meet only in
/// jobline-core (kinds, job file names) and the store, so neither rebuilds when the other
/// changes, and the edge cannot reach a handler's internals.
#[test]
fn http_never_depends_on_the_worker() {
    let toml = fs::read_to_string(crates_dir().join("jobline-http/Cargo.toml")).unwrap();
    // Every table, dev-dependencies included.
    assert!(!toml.contains("jobline-worker"), "jobline-http's Cargo.toml names jobline-worker");
    for f in rust_files(&crates_dir().join("jobline-http")) {
        let src = fs::read_to_string(&f).unwrap();
        assert!(!src.contains("jobline_worker"), "{} uses jobline_worker", f.display());
    }
}

/// The dialect modules of jobline-http. Each one may use the shared modules, never another
/// dialect.
const DIALECTS: [&str; 4] = ["pxm", "promotions", "zuora", "native"];

/// Each jobline-http source file with its top-level module (`pxm` for `src/pxm/jobs.rs`,
/// `files` for `src/files.rs`) and its text with comment lines left out.
fn http_modules() -> Vec<(PathBuf, String, String)> {
    let src = crates_dir().join("jobline-http/src");
    let mut out = Vec::new();
    for f in rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_owned();
        let text = fs::read_to_string(&f).unwrap();
        let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
        out.push((f, module, code.join("\n")));
    }
    out
}

/// The top-level modules of its crate that `code` names: `crate::x…`, `super::super::x…` (from
/// a file one folder down), and each item of a grouped `use crate::{x, y::z}`.
fn crate_modules_named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["crate::", "super::super::"] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            let Some(group) = rest.strip_prefix('{') else {
                out.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
                continue;
            };
            // The first identifier of each top-level item of the group.
            let (mut depth, mut item_start, mut name) = (0, true, String::new());
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if item_start && !name.is_empty() => {
                        out.push(std::mem::take(&mut name));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// "Dialects never import each other": what two dialects share lives in a shared module
/// (`ep` for the two Elastic Path dialects, `state`, `shared`, `request_id` for all), so a
/// change to one dialect's DTOs or extractors cannot change another's wire. Zuora also stays
/// out of `ep` and `files`, which answer in Elastic Path's error shape. Only `lib.rs`, the
/// router (`app.rs`) and the API description that lists the router's handlers (`openapi.rs`)
/// name the dialects.
#[test]
fn dialects_never_import_each_other() {
    for (f, module, code) in http_modules() {
        if module == "lib" || module == "app" || module == "openapi" {
            continue;
        }
        for named in crate_modules_named(&code) {
            let other_dialect = DIALECTS.contains(&named.as_str()) && named != module;
            let zuora_into_ep = module == "zuora" && (named == "ep" || named == "files");
            assert!(
                !other_dialect && !zuora_into_ep,
                "{} (module {module}) imports crate::{named}",
                f.display()
            );
        }
    }
}

/// "Nothing imports the router": `app.rs` imports every dialect, so a module that imports it
/// back makes one import circle of the whole crate. What handlers need from the app
/// (`AppState`, `InternalCause`) lives in `state.rs`.
#[test]
fn nothing_imports_the_router() {
    for (f, module, code) in http_modules() {
        if module == "lib" || module == "app" {
            continue;
        }
        assert!(
            !crate_modules_named(&code).iter().any(|m| m == "app"),
            "{} imports crate::app",
            f.display()
        );
    }
}

/// The import scanner the two tests above rely on sees every form of path.
#[test]
fn crate_paths_are_found_in_every_import_form() {
    let code = "use crate::ep::auth;\nuse crate::{state::AppState, pxm::{dto, jobs}, zuora};\n\
                let x = super::super::promotions::dto::f(crate::files::link());";
    let mut named = crate_modules_named(code);
    named.sort();
    assert_eq!(named, ["ep", "files", "promotions", "pxm", "state", "zuora"]);
}

/// The store's source without comment lines, file by file.
fn store_code() -> Vec<(PathBuf, String)> {
    rust_files(&crates_dir().join("jobline-store/src"))
        .into_iter()
        .map(|f| {
            let src = fs::read_to_string(&f).unwrap();
            let code: Vec<&str> =
                src.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            (f, code.join("\n"))
        })
        .collect()
}

/// "No `macro_rules!` in the store": every statement is written once, for both engines, through
/// `db::Sql` and `db::Tx`, so nothing is compiled twice or returns from its caller unseen.
#[test]
fn the_store_has_no_macros() {
    for (f, code) in store_code() {
        assert!(!code.contains("macro_rules!"), "{} defines a macro", f.display());
    }
}

/// "No job state is typed by hand in SQL": the store builds every `state = …` and `IN (…)` and
/// the cancel statement's mask bits from core's `Action`, `JobState` and `CancelPolicy`, so the
/// SQL and the state table cannot drift apart. A quoted state name or a literal mask bit in
/// the store's code (comments aside) breaks that.
#[test]
fn the_store_types_no_state_or_mask_bit_by_hand() {
    let states =
        ["awaiting_input", "pending", "running", "cancelling", "succeeded", "failed", "cancelled"];
    for (f, code) in store_code() {
        for s in states {
            assert!(!code.contains(&format!("'{s}'")), "{} types the state {s:?}", f.display());
        }
        for bit in ["& 1", "& 2", "& 4"] {
            assert!(
                !code.contains(&format!("cancel_mask {bit}")),
                "{} types a cancel mask bit",
                f.display()
            );
        }
    }
}
