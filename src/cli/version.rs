//! What `pipework --version` and the man page's date say, from what the build knew.
//!
//! build.rs compiles this file as its own module (`#[path]`) and hands the results
//! to the crate as `PIPEWORK_VERSION_LINE` and `PIPEWORK_COMMIT_DATE`; the crate
//! compiles it only for its tests. So it stands alone: std only, no crate paths.

/// The line after `pipework `: the commit when the build knew one, else when it
/// was built (a tarball or `cargo install` from the registry has no git), never a
/// bare `unknown`.
pub fn version_line(version: &str, commit: Option<&str>, built: u64) -> String {
    match commit {
        Some(c) => format!("{version} (commit {c})"),
        None => format!("{version} (built {} UTC, not from a git checkout)", utc_minute(built)),
    }
}

/// The man page's date: the commit's (a rebuild gives the same page), else the
/// build's.
pub fn man_date(commit_date: Option<&str>, built: u64) -> String {
    match commit_date {
        Some(d) => d.to_string(),
        None => utc_date(built),
    }
}

/// `YYYY-MM-DD` of a Unix time, in UTC.
pub fn utc_date(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` of a Unix time, in UTC.
pub fn utc_minute(secs: u64) -> String {
    let of_day = secs % 86_400;
    format!("{} {:02}:{:02}", utc_date(secs), of_day / 3600, of_day % 3600 / 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): a build script has no date crate, and needs none for this.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_a_commit_the_line_names_it() {
        assert_eq!(version_line("0.1.0", Some("79df8df1c2ab"), 0), "0.1.0 (commit 79df8df1c2ab)");
        assert_eq!(man_date(Some("2026-12-06"), 0), "2026-12-06");
    }

    #[test]
    fn without_git_the_line_says_when_it_was_built() {
        // 2026-12-06 22:41:07 UTC.
        let built = 1_796_596_867;
        assert_eq!(
            version_line("0.1.0", None, built),
            "0.1.0 (built 2026-12-06 22:41 UTC, not from a git checkout)"
        );
        assert_eq!(man_date(None, built), "2026-12-06");
        assert!(!version_line("0.1.0", None, built).contains("unknown"));
    }

    #[test]
    fn dates_of_known_days() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_minute(59), "1970-01-01 00:00");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(1_709_164_800), "2024-02-29");
        assert_eq!(utc_minute(1_735_689_599), "2024-12-31 23:59");
        assert_eq!(utc_date(1_735_689_600), "2025-01-01");
    }
}
