//! Prerendered feed documents in memory: the bytes, their gzip and brotli variants (made
//! once per build), a strong ETag and the per-feed Last-Modified.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::http::HeaderValue;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{FeedFormat, FeedKey};
use crate::sendfile;
use crate::store::StoredFeedDocument;

/// One feed document in one format.
#[derive(Clone, Debug)]
pub struct FeedDocument {
    pub body: Bytes,
    /// Filled in once compressed; until then the identity bytes are served.
    pub gzip: Option<Bytes>,
    pub brotli: Option<Bytes>,
    /// Hex digest of `body`; each encoding's ETag adds a suffix (`"…"`, `"…-gzip"`, `"…-br"`).
    pub digest: String,
    pub last_modified: DateTime<Utc>,
    /// The last publication event this build reflects.
    pub built_through: i64,
    /// Order of builds in this process: a later build always replaces an earlier one.
    pub generation: u64,
    /// Response headers made once per build rather than per request.
    pub headers: DocumentHeaders,
}

/// The per-document header values: the ETag of each encoding, Last-Modified, and the
/// Link header (self and hubs), which the builder fills in.
#[derive(Clone, Debug)]
pub struct DocumentHeaders {
    pub etag_identity: HeaderValue,
    pub etag_gzip: HeaderValue,
    pub etag_brotli: HeaderValue,
    pub last_modified: HeaderValue,
    pub link: Option<HeaderValue>,
}

impl DocumentHeaders {
    fn new(digest: &str, last_modified: DateTime<Utc>) -> DocumentHeaders {
        let value = |s: String| HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""));
        DocumentHeaders {
            etag_identity: value(format!("\"{digest}\"")),
            etag_gzip: value(format!("\"{digest}-gzip\"")),
            etag_brotli: value(format!("\"{digest}-br\"")),
            last_modified: value(last_modified.format("%a, %d %b %Y %H:%M:%S GMT").to_string()),
            link: None,
        }
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

pub fn digest(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::new(6));
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

pub fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4);
    // A window just large enough for the document (up to brotli's usual 4 MB): the encoder
    // allocates and zeroes its buffers by the window's size, for every document.
    let lgwin = (16..22).find(|bits| (1usize << bits) - 16 >= body.len()).unwrap_or(22);
    let params = brotli::enc::BrotliEncoderParams { quality: 7, lgwin, ..Default::default() };
    let _ = brotli::BrotliCompress(&mut &body[..], &mut out, &params);
    out
}

impl FeedDocument {
    /// A new build, not yet compressed.
    pub fn new(body: String, last_modified: DateTime<Utc>, built_through: i64) -> FeedDocument {
        let digest = digest(body.as_bytes());
        FeedDocument::with_digest(body, digest, last_modified, built_through)
    }

    /// Like `new`, for a body whose digest the caller has already computed.
    pub fn with_digest(body: String, digest: String, last_modified: DateTime<Utc>, built_through: i64) -> FeedDocument {
        FeedDocument {
            body: Bytes::from(body),
            gzip: None,
            brotli: None,
            headers: DocumentHeaders::new(&digest, last_modified),
            digest,
            last_modified,
            built_through,
            generation: next_generation(),
        }
    }

    /// Adds the compressed variants (CPU work: call off the async threads).
    pub fn compressed(mut self) -> FeedDocument {
        self.gzip = Some(Bytes::from(gzip(&self.body)));
        self.brotli = Some(Bytes::from(brotli(&self.body)));
        self
    }

    /// Moves the bodies that are large enough into file-backed memory (see `sendfile`);
    /// bodies already there, or left on the heap, are unchanged.
    pub(super) fn file_back(&mut self) {
        for bytes in [Some(&mut self.body), self.gzip.as_mut(), self.brotli.as_mut()].into_iter().flatten() {
            if let Some(mapped) = sendfile::file_backed(bytes) {
                *bytes = mapped;
            }
        }
    }

    pub fn to_stored(&self, key: &FeedKey, format: FeedFormat) -> Option<StoredFeedDocument> {
        Some(StoredFeedDocument {
            feed_key: key.storage_key(),
            format: format.extension().to_owned(),
            body: self.body.to_vec(),
            gzip: self.gzip.as_ref()?.to_vec(),
            brotli: self.brotli.as_ref()?.to_vec(),
            etag: self.digest.clone(),
            last_modified: self.last_modified,
            built_through: self.built_through,
        })
    }

    pub fn from_stored(stored: StoredFeedDocument) -> Option<(FeedKey, FeedFormat, FeedDocument)> {
        let key = FeedKey::from_storage_key(&stored.feed_key)?;
        let format = FeedFormat::from_extension(&stored.format)?;
        Some((
            key,
            format,
            FeedDocument {
                headers: DocumentHeaders::new(&stored.etag, stored.last_modified),
                body: Bytes::from(stored.body),
                gzip: Some(Bytes::from(stored.gzip)),
                brotli: Some(Bytes::from(stored.brotli)),
                digest: stored.etag,
                last_modified: stored.last_modified,
                built_through: stored.built_through,
                // Loaded at start: any build made here afterwards is newer.
                generation: 0,
            },
        ))
    }
}

/// Every built document, shared by the HTTP handlers and the builder.
#[derive(Default)]
pub struct FeedCache {
    docs: RwLock<HashMap<FeedKey, [Option<Arc<FeedDocument>>; 3]>>,
}

fn slot(format: FeedFormat) -> usize {
    match format {
        FeedFormat::Rss => 0,
        FeedFormat::Atom => 1,
        FeedFormat::Json => 2,
    }
}

impl FeedCache {
    pub fn get(&self, key: &FeedKey, format: FeedFormat) -> Option<Arc<FeedDocument>> {
        let docs = self.docs.read().unwrap_or_else(|p| p.into_inner());
        docs.get(key).and_then(|formats| formats[slot(format)].clone())
    }

    /// Stores a document unless a newer build is already there. Its large bodies move
    /// to file-backed memory, so connections send them with sendfile.
    pub fn put(&self, key: FeedKey, format: FeedFormat, mut doc: FeedDocument) {
        doc.file_back();
        let mut docs = self.docs.write().unwrap_or_else(|p| p.into_inner());
        let current = &mut docs.entry(key).or_default()[slot(format)];
        if current.as_ref().is_none_or(|c| c.generation <= doc.generation) {
            *current = Some(Arc::new(doc));
        }
    }

    /// How many documents (feed × format) are built.
    pub fn len(&self) -> usize {
        let docs = self.docs.read().unwrap_or_else(|p| p.into_inner());
        docs.values().map(|formats| formats.iter().flatten().count()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
