//! Deleting many objects at once ([`ObjectDestination::delete_many`](super::ObjectDestination::delete_many)).
//!
//! # Order
//!
//! The keys go in two phases: first every `metadata` key (a key whose last segment is
//! `metadata`), then the rest, each phase in the order given. The second phase starts only
//! once every request of the first has been answered, so a bbr artifact that is half
//! deleted has lost its `metadata` first and reads as incomplete, never as a complete
//! artifact with missing tars. A key in the directory of a `metadata` key that could not be
//! deleted is not deleted either (it is reported as a failure saying why), so a failed
//! `metadata` delete leaves its artifact whole.
//!
//! # Requests
//!
//! - **S3**: `DeleteObjects`, 1,000 keys per request (the API's limit), a few requests at
//!   once (`object_store`'s `delete_stream` over one chunk at a time, so a request that fails
//!   as a whole is charged to exactly its keys).
//! - **Azure** with a shared key: the Blob Batch API, 256 deletes per request (its limit).
//!   With a SAS: single `Delete Blob` requests, [`SINGLE_CONCURRENCY`] at once (Azurite
//!   refuses a batch signed with a SAS).
//! - **GCS**: single deletes, [`SINGLE_CONCURRENCY`] at once (the JSON API's batch endpoint
//!   is not implemented by fake-gcs-server, and object_store does not use it).
//!
//! A missing object is not a failure.

use futures::{StreamExt, stream};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;

use super::common::{self, Ctx};
use crate::StorageError;

/// Keys per S3 `DeleteObjects` request (the API's maximum).
pub(crate) const S3_BATCH: usize = 1_000;
/// Deletes per Azure blob batch request (the API's maximum).
pub(crate) const AZURE_BATCH: usize = 256;
/// Bulk requests in flight at once.
pub(crate) const BATCH_CONCURRENCY: usize = 8;
/// Single delete requests in flight at once, for stores without a usable bulk form.
pub(crate) const SINGLE_CONCURRENCY: usize = 32;

/// Whether `key` is a bbr artifact's `metadata` object (its last segment is `metadata`).
pub(crate) fn is_metadata(key: &str) -> bool {
    key.rsplit('/').next() == Some("metadata")
}

/// Keys to delete, each with its index in the caller's list.
pub(crate) type Indexed = Vec<(usize, String)>;

/// Split `items` into the two phases: `metadata` keys first, then the rest, each in the
/// order given.
pub(crate) fn phases(items: Indexed) -> (Indexed, Indexed) {
    items.into_iter().partition(|(_, key)| is_metadata(key))
}

/// The `metadata` key among `failed_metadata` whose directory holds `key`, if any (a key is
/// held back when its artifact's `metadata` could not be deleted).
pub(crate) fn held_back_by<'a>(key: &str, failed_metadata: &'a [String]) -> Option<&'a str> {
    failed_metadata
        .iter()
        .find(|m| {
            let dir = m.strip_suffix("metadata").unwrap_or(m);
            // A top-level `metadata` (dir "") holds back the whole call's top level only.
            if dir.is_empty() {
                !key.contains('/')
            } else {
                key.starts_with(dir)
            }
        })
        .map(String::as_str)
}

/// Delete `items` (index, normalised key) by bulk requests; returns the failures by index.
pub(crate) async fn bulk(
    store: &dyn ObjectStore,
    batch: usize,
    what: &'static str,
    items: Vec<(usize, String)>,
    ctx: &Ctx<'_>,
) -> Vec<(usize, StorageError)> {
    let chunks: Vec<Vec<(usize, String)>> = items
        .chunks(batch.max(1))
        .map(<[(usize, String)]>::to_vec)
        .collect();
    stream::iter(chunks)
        .map(|chunk| bulk_chunk(store, what, chunk, ctx))
        .buffer_unordered(BATCH_CONCURRENCY)
        .flat_map(stream::iter)
        .collect()
        .await
}

/// One bulk request for `chunk`.
async fn bulk_chunk(
    store: &dyn ObjectStore,
    what: &'static str,
    chunk: Vec<(usize, String)>,
    ctx: &Ctx<'_>,
) -> Vec<(usize, StorageError)> {
    let mut failures = Vec::new();
    let mut paths = Vec::with_capacity(chunk.len());
    let mut sent = Vec::with_capacity(chunk.len());
    for (i, key) in chunk {
        match common::object_path(&key) {
            Ok(p) => {
                paths.push(Ok(p));
                sent.push((i, key));
            }
            Err(e) => failures.push((i, e)),
        }
    }
    if sent.is_empty() {
        return failures;
    }
    let results: Vec<object_store::Result<ObjectPath>> = store
        .delete_stream(stream::iter(paths).boxed())
        .collect()
        .await;
    if results.len() == sent.len() {
        // One result per key, in the order sent.
        for ((i, key), r) in sent.into_iter().zip(results) {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    let denied = is_denied(&e) || e.to_string().contains("AccessDenied");
                    let text = format!("deleting {key:?}: {e}");
                    failures.push((i, failure(ctx, text, denied)));
                }
            }
        }
    } else {
        // The request failed as a whole (one error for the chunk; its text would list every
        // key of the chunk, so only its cause is quoted).
        let cause = results
            .into_iter()
            .find_map(Result::err)
            .map(|e| (is_denied(&e), cause_text(&e)))
            .unwrap_or_else(|| (false, "the store answered for fewer keys than sent".into()));
        for (i, key) in sent {
            let text = format!("deleting {key:?}: the {what} request failed: {}", cause.1);
            failures.push((i, failure(ctx, text, cause.0)));
        }
    }
    failures
}

fn is_denied(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    )
}

/// The error's cause without the path list object_store puts in a bulk error's message.
fn cause_text(e: &object_store::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => e.to_string(),
    }
}

fn failure(ctx: &Ctx<'_>, text: String, denied: bool) -> StorageError {
    if denied {
        StorageError::AccessDenied(ctx.redactor.redact(&format!("{}: {text}", ctx.label)))
    } else {
        ctx.rejected(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(keys: &[&str]) -> Vec<(usize, String)> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| (i, k.to_string()))
            .collect()
    }

    #[test]
    fn delete_phases_put_every_metadata_first_keeping_order() {
        let (first, rest) = phases(keyed(&[
            "p/dep_1/metadata",
            "p/dep_1/redis-0-redis.tar",
            "p/dep_2/a-0-b.tar",
            "p/dep_2/metadata",
            "p/dep_3/metadata.tar",
            "p/dep_3/not-metadata",
            "metadata",
            "p/metadata/x.tar",
        ]));
        assert_eq!(
            first,
            keyed(&["p/dep_1/metadata"])
                .into_iter()
                .chain([(3, "p/dep_2/metadata".into()), (6, "metadata".into())])
                .collect::<Vec<_>>()
        );
        let rest_keys: Vec<usize> = rest.iter().map(|(i, _)| *i).collect();
        assert_eq!(rest_keys, vec![1, 2, 4, 5, 7]);
    }

    #[test]
    fn delete_holds_back_the_keys_of_an_artifact_whose_metadata_failed() {
        let failed = vec!["p/dep_1/metadata".to_string(), "metadata".to_string()];
        assert_eq!(
            held_back_by("p/dep_1/redis-0-redis.tar", &failed),
            Some("p/dep_1/metadata")
        );
        assert_eq!(held_back_by("p/dep_10/x.tar", &failed), None);
        assert_eq!(held_back_by("p/dep_2/x.tar", &failed), None);
        assert_eq!(held_back_by("top.tar", &failed), Some("metadata"));
        assert_eq!(held_back_by("p/dep_2/x.tar", &[]), None);
    }
}
