//! The command-line grammar: the input is argv (without the program name), one
//! word per NUL-separated piece. Any input must give an `Invocation` or a
//! `CliError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let argv: Vec<String> =
        data.split(|b| *b == 0).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    if let Ok(invocation) = pipework::cli::parse(argv.clone()) {
        // Debug walks every typed value, Display impls included where derived.
        let _ = format!("{invocation:?}");
    }
    let _ = pipework::cli::parse_without_passthrough(argv);
});
