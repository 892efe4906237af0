//! The `casegate` binary: parse the command line, run it, exit with its status.

fn main() {
    let cli = casegate::cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("casegate: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = runtime.block_on(casegate::cli::run(cli));
    std::process::exit(code);
}
