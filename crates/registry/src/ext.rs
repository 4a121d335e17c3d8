//! The registry's face for extensions: everything another crate may use to
//! serve an API on the registry's port, keep state in its store, and raise
//! events. The webhooks and the Helm chart repository compile against this
//! module alone.

pub use crate::auth::{Need, Role};
pub use crate::error::Error;
pub use crate::events::{Action, Event, EventLog, Hold, Record, Request, Target};
pub use crate::extension::{Endpoint, Extension};
pub use crate::kv::{
    decode, decode_u64, key, split, BoxFuture, Db, Entry, Exclusive, Lease, Notice, Tree, Tx,
};
pub use crate::query::{percent_decode, Query};
pub use crate::request::Ctx;
pub use crate::storage::extension::ExtensionStore;
pub use crate::storage::space::Space;

/// Durations in configuration files, for `serde(with)` attributes.
pub mod durations {
    pub use crate::config::{
        duration as read, duration_opt as read_opt, human as write, human_opt as write_opt,
    };
}
pub use crate::storage::file_io::{collect, BlobStream};
pub use crate::tls::provider as tls_provider;
pub use crate::types::{
    Algorithm, ByteRange, ContentRange, Digest, Digester, Reference, RepoName, Tag, UploadId,
};

/// Response bodies and request-body reading.
pub mod body {
    pub use crate::body::{
        collect_limited, empty, full, header_value, json, stream, Body, ReadError,
    };
}
