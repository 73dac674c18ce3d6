//! `quiver serve`: open the metadata store (migrations run at start-up), build the
//! runtime (providers compiled into this binary), run the job coordinator in the
//! background, serve the API, and stop both gracefully on SIGINT or SIGTERM.

use std::sync::Arc;

use quiver_coordinator::CoordinatorConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use crate::args::ServeArgs;
use crate::error::CliError;

pub async fn run(args: ServeArgs) -> Result<(), CliError> {
    let store = quiver_metadata::connect(args.store.database_url.as_deref(), &args.store.data_dir)
        .await
        .map_err(|e| CliError::failed(format!("cannot open the metadata store: {e}")))?;
    match store.backend() {
        "sqlite" if args.store.database_url.is_none() => {
            info!(data_dir = %args.store.data_dir.display(), "metadata store: embedded sqlite")
        }
        // The URL may hold a password: name the backend only.
        backend => info!(backend, "metadata store: {backend}"),
    }

    let listener = TcpListener::bind(&args.listen)
        .await
        .map_err(|e| CliError::failed(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::failed(format!("cannot read the listening address: {e}")))?;
    // Scripts and tests read the URL from this line (with `--listen 127.0.0.1:0`).
    info!("quiver listening on http://{address} (API docs: http://{address}/api/v1/docs)");

    let runtime = Arc::new(crate::runtime::build(store, &args.store.data_dir)?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let coordinator = runtime.coordinator(CoordinatorConfig {
        lease: args.job_lease,
        concurrency: usize::from(args.job_concurrency),
        ..CoordinatorConfig::default()
    });
    let jobs = tokio::spawn(async move { coordinator.run(stop_rx).await });

    let state = quiver_api::AppState::with_runtime(runtime);
    let served = quiver_api::serve(listener, state, shutdown_signal()).await;
    // Stop claiming jobs; a job in progress finishes its current step or, if the
    // process ends first, is taken over by the next start once its lease expires.
    let _ = stop_tx.send(true);
    if let Err(e) = jobs.await {
        tracing::warn!(error = %e, "job coordinator ended abnormally");
    }
    served.map_err(|e| CliError::failed(format!("server error: {e}")))?;
    info!("quiver stopped");
    Ok(())
}

/// Resolves on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => info!("interrupt received, shutting down"),
        _ = terminate => info!("terminate signal received, shutting down"),
    }
}
