//! The parsers of request text, for the fuzz targets (`fuzz/`), which are a
//! crate of their own: built only with the `fuzzing` feature, never part of
//! the registry's face.

pub use hyper::Method;

pub use crate::manifest::{Manifest, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
pub use crate::query::Query;
pub use crate::route::{Head, Route};
pub use crate::types::{
    Algorithm, ByteRange, ContentRange, Digest, Reference, RepoName, Tag, UploadId,
};
