//! IR → MongoDB filters and pipelines, and [`MongoQueries`] (placeholder).

/// The MongoDB query back end over one collection, driven by a tokio
/// runtime handle (`handle.block_on` per call: call it from a blocking
/// thread, never from inside the runtime).
#[derive(Debug, Clone)]
pub struct MongoQueries {
    collection: mongodb::Collection<bson::Document>,
    handle: tokio::runtime::Handle,
}

impl MongoQueries {
    /// Queries `collection` (e.g. `helios.events`) using `handle`'s runtime.
    pub fn new(
        collection: mongodb::Collection<bson::Document>,
        handle: tokio::runtime::Handle,
    ) -> Self {
        Self { collection, handle }
    }
}
