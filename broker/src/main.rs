use std::process::ExitCode;

use skein_broker::config::{BrokerConfig, Command};

#[global_allocator]
static ALLOCATOR: skein_protocol::alloc_guard::GuardedAllocator = skein_protocol::alloc_guard::GuardedAllocator;

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let allocator_tuned = skein_protocol::alloc_guard::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = match BrokerConfig::from_sources(&args, &env) {
        Ok(Command::Run(config)) => *config,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("skein {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("skein: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.json_logs);
    if !allocator_tuned {
        tracing::warn!("could not tune the C allocator (mallopt); fetches will cost more CPU");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("skein: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let running = match skein_broker::start(config).await {
            Ok(running) => running,
            Err(error) => {
                tracing::error!("cannot start: {error:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(
            kafka = %running.kafka_address,
            http = %running.http_address.map_or_else(|| "disabled".to_owned(), |a| a.to_string()),
            data_dir = %data_dir.display(),
            startup_ms = started.elapsed().as_millis() as u64,
            "skein is ready"
        );
        wait_for_signal().await;
        tracing::info!("shutting down: draining requests, then syncing storage");
        running.stop().await;
        tracing::info!("stopped cleanly");
        ExitCode::SUCCESS
    })
}
