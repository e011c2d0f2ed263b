//! The `pipework` binary: everything lives in the library; see `pipework::main`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Read as OS strings: `std::env::args` panics on an argument that is not UTF-8.
    let mut argv = Vec::new();
    for (i, arg) in std::env::args_os().skip(1).enumerate() {
        match arg.into_string() {
            Ok(a) => argv.push(a),
            Err(raw) => {
                eprintln!("pipework: argument {} is not valid UTF-8: {raw:?}", i + 1);
                return ExitCode::from(1);
            }
        }
    }
    pipework::main(argv)
}
