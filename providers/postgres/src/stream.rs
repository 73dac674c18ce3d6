//! Streaming a query's rows out as Arrow record batches.
//!
//! The rows are fetched by a task that owns the query and a pooled connection, and handed
//! over a small bounded channel: the server's rows are read off the socket only as fast as
//! the consumer takes batches, so a large result is never held whole in memory. Dropping
//! the stream stops the task, which releases the connection.

use futures::StreamExt;
use quiver_provider_sdk::{BatchStream, ProviderError};
use quiver_sql::Param;
use sqlx::postgres::{PgArguments, PgPool};
use sqlx::query::Query;
use sqlx::Postgres;

use crate::errors;
use crate::types::{BatchBuilder, Column};

/// Rows per record batch.
pub const BATCH_ROWS: usize = 8192;

pub fn bind_all<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    params: &[Param],
) -> Query<'q, Postgres, PgArguments> {
    for param in params {
        query = match param {
            Param::Int(v) => query.bind(*v),
            Param::Timestamp(t) => query.bind(*t),
        };
    }
    query
}

/// Stream the rows of `sql` (whose result columns are `columns`, in order) as batches.
pub fn batches(
    pool: PgPool,
    target: String,
    sql: String,
    params: Vec<Param>,
    columns: Vec<Column>,
) -> BatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<_, ProviderError>>(2);
    tokio::spawn(async move {
        let query = sqlx::query(&sql).persistent(false);
        let mut rows = bind_all(query, &params).fetch(&pool);
        let mut builder = BatchBuilder::new(&columns);
        loop {
            let item = match rows.next().await {
                Some(Ok(row)) => match builder.append(&row) {
                    Ok(()) if builder.rows() < BATCH_ROWS => continue,
                    Ok(()) => builder.finish(),
                    Err(e) => Err(errors::sqlx(e, &target)),
                },
                Some(Err(e)) => Err(errors::sqlx(e, &target)),
                None => {
                    if builder.rows() > 0 {
                        // A closed receiver only means nobody wants the rest.
                        let _ = tx.send(builder.finish()).await;
                    }
                    return;
                }
            };
            let failed = item.is_err();
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}
