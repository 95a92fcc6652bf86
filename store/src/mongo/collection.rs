//! What both sides of the MongoDB back end agree on about the collection:
//! its default names, the indexes the sink creates and the queries rely on,
//! and how a driver client is configured. A change to "how MongoDB is laid
//! out" starts here.

use std::time::Duration;

use bson::{doc, Document};
use mongodb::options::ClientOptions;

use crate::model::{FIELD_ID, FIELD_RECV, FIELD_TS, FIELD_TYPE};

/// Database used when none is configured.
pub const DEFAULT_DATABASE: &str = "helios";
/// Collection used when none is configured.
pub const DEFAULT_COLLECTION: &str = "events";

/// How long server selection may take before a call fails (the driver's
/// default, 30 s, would stall the flusher's retry loop and hold a report
/// request); a `serverSelectionTimeoutMS` in the URI wins.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Index serving pages and counts filtered by type (DESIGN §5).
pub(crate) const INDEX_TYPE_TS_ID: &str = "helios_type_ts_id";
/// Index serving time-ordered pages and histograms (DESIGN §5).
pub(crate) const INDEX_TS_ID: &str = "helios_ts_id";
/// Index serving the report server's live tail, which reads by `recv`.
pub(crate) const INDEX_RECV_ID: &str = "helios_recv_id";
/// Name of the TTL index on `recv` (`--retention-days`).
pub(crate) const INDEX_RECV_TTL: &str = "helios_recv_ttl";

/// The `createIndexes` specs of the standard layout: the DESIGN §5 indexes
/// plus the live tail's.
pub(crate) fn standard_indexes() -> Vec<Document> {
    vec![
        doc! { "key": { FIELD_TYPE: 1, FIELD_TS: -1, FIELD_ID: -1 }, "name": INDEX_TYPE_TS_ID },
        doc! { "key": { FIELD_TS: -1, FIELD_ID: -1 }, "name": INDEX_TS_ID },
        doc! { "key": { FIELD_RECV: 1, FIELD_ID: 1 }, "name": INDEX_RECV_ID },
    ]
}

/// The TTL index spec expiring events `expire_after_s` after `recv`.
pub(crate) fn ttl_index(expire_after_s: i64) -> Document {
    doc! { "key": { FIELD_RECV: 1 }, "name": INDEX_RECV_TTL, "expireAfterSeconds": expire_after_s }
}

/// Parses a connection string into driver options with Helios's defaults
/// (bounded server selection, `app_name` for the server's logs). The
/// driver's parse errors name the problem, never the password.
pub(crate) async fn client_options(
    uri: &str,
    app_name: &str,
) -> Result<ClientOptions, mongodb::error::Error> {
    let mut options = ClientOptions::parse(uri).await?;
    options
        .server_selection_timeout
        .get_or_insert(SERVER_SELECTION_TIMEOUT);
    options.app_name.get_or_insert_with(|| app_name.to_owned());
    Ok(options)
}
