//! Validated newtypes for everything that arrives in a URL: repository names,
//! tags, digests, references, upload ids and byte ranges. Each has a `parse`
//! that is the only way to build one, so a value of these types is always valid.

mod digest;
mod name;
mod range;
mod reference;

pub use digest::{Algorithm, Digest, Digester};
pub use name::RepoName;
pub use range::{ByteRange, ContentRange};
pub use reference::{Reference, Tag, UploadId};
