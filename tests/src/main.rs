//! The local runner as a separate process, for end-to-end tests that kill it with SIGKILL and
//! start it again on the same data directory. Prints `listening <addr>` once ready.

#[tokio::main]
async fn main() {
    let config = match shared::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let running = match connector_local::start(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!("listening {}", running.addr);
    running.wait().await;
}
