//! CSV exports as streamed response bodies: a page of subscribers is read, written out
//! and dropped before the next is read, so memory stays flat however large the list.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use serde_json::json;
use tokio::sync::mpsc;

use crate::audience::Audience;

type Chunk = Result<Vec<u8>, std::io::Error>;

/// The export of every subscriber (of one list) as a response body. The export is
/// recorded in the audit log as `actor` on `subject` once it has been read to the end
/// (or, with `"complete": false`, when the client went away or a page failed). A failure
/// half-way aborts the response instead of ending it as if the file were whole.
pub(super) fn csv_export(audience: Arc<Audience>, list_id: Option<i64>, actor: String, subject: String) -> Body {
    let (pages, receiver) = mpsc::channel::<Chunk>(2);
    tokio::spawn(async move {
        let mut after = 0;
        let mut rows = 0;
        let complete = loop {
            match audience.export_page(list_id, after).await {
                Ok(page) => {
                    rows += page.rows;
                    if pages.send(Ok(page.csv)).await.is_err() {
                        break false;
                    }
                    match page.next {
                        Some(next) => after = next,
                        None => break true,
                    }
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "CSV export failed part-way");
                    let _ = pages.send(Err(std::io::Error::other("the export failed part-way"))).await;
                    break false;
                }
            }
        };
        audience.audit(&actor, "subscribers.export", &subject, json!({"rows": rows, "complete": complete})).await;
    });
    Body::from_stream(Pages(receiver))
}

struct Pages(mpsc::Receiver<Chunk>);

impl futures_core::Stream for Pages {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}
