//! `pipework watch`'s declarations: the input is a container's labels and environment,
//! one `NAME=VALUE` a line. Every declaration must give an attachment whose guest is
//! the container itself, or a one-line reason; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for key in [None, Some("k")] {
        for parsed in pipework::parse_watch_declarations(&text, key) {
            match parsed {
                Ok(attach) => assert_eq!(attach.guest.len(), 64, "{attach:?}"),
                Err(why) => assert!(!why.is_empty()),
            }
        }
    }
});
