//! The `pipework` binary: everything lives in the library; see `pipework::main`.

fn main() -> std::process::ExitCode {
    pipework::main(std::env::args().skip(1))
}
