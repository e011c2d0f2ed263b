//! Build script: the git commit the binary is built from, for `pipework --version`.
//!
//! `PIPEWORK_GIT_COMMIT` in the environment wins (a build from a tarball that knows
//! its commit); otherwise `git rev-parse` in the source tree; a tree without git
//! (a tarball, `cargo install` from the registry, a machine without git) says when
//! it was built instead: `SOURCE_DATE_EPOCH` (reproducible builds) or now. The
//! wording is src/cli/version.rs's, which the crate's tests check.

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "src/cli/version.rs"]
mod version;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Re-run the build script when this git file changes; a missing one (no packed-refs
/// yet) is left out, as cargo would otherwise re-run the script on every build.
fn watch(dir: &Path, git_path: &str) {
    if let Some(f) = git(dir, &["rev-parse", "--path-format=absolute", "--git-path", git_path]) {
        if Path::new(&f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    println!("cargo:rerun-if-env-changed=PIPEWORK_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli/version.rs");
    let commit = match std::env::var("PIPEWORK_GIT_COMMIT") {
        Ok(c) if !c.is_empty() => Some(c),
        _ => git(dir, &["rev-parse", "--short=12", "HEAD"]).inspect(|_| {
            // Re-run when HEAD moves: HEAD itself (a checkout), the branch's ref (a
            // commit) and packed-refs. `--git-path` finds them in a worktree too.
            watch(dir, "HEAD");
            watch(dir, "packed-refs");
            if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
                watch(dir, &r);
            }
        }),
    };
    let built =
        std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
        });
    // The man page's date: the commit's, so that a rebuild gives the same page.
    let commit_date = commit.as_deref().and_then(|c| git(dir, &["show", "-s", "--format=%cs", c]));
    println!("cargo:rustc-env=PIPEWORK_COMMIT_DATE={}", version::man_date(commit_date.as_deref(), built));
    let pkg = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!(
        "cargo:rustc-env=PIPEWORK_VERSION_LINE={}",
        version::version_line(&pkg, commit.as_deref(), built)
    );
}
