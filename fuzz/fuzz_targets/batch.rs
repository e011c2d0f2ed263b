//! The `--batch` line parser: the input is a batch file. Every line that holds
//! words must give an attachment or a one-line reason, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for (line, parsed) in pipework::parse_batch_lines(&text) {
        assert!(line >= 1);
        if let Ok(attach) = parsed {
            let _ = format!("{attach:?}");
        }
    }
});
