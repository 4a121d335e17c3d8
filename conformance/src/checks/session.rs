//! Upload-session helpers shared by the blob push checks.

use super::{ensure, header, status, uploads_path};
use crate::client::{with_query, Client, Response};
use crate::data::Blob;
use crate::report::{Finding, Level};

/// `Content-Type` header for blob bytes.
pub const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// POSTs to the uploads endpoint (with an optional query) and returns the
/// absolute upload URL and the response. Expects 202 + Location.
pub fn start_session(
    client: &Client,
    repo: &str,
    query: &str,
    level: Level,
) -> Result<(String, Response), Finding> {
    let mut url = uploads_path(repo);
    if !query.is_empty() {
        url = with_query(&url, query);
    }
    let post = client.send("POST", &url, &[], Some(&[]))?;
    status(&post, &[202], level)?;
    let location = client.url(header(&post, "Location", level)?);
    Ok((location, post))
}

/// Sends `data` as the chunk starting at `offset`.
pub fn patch(
    client: &Client,
    location: &str,
    data: &[u8],
    offset: usize,
) -> Result<Response, String> {
    let range = format!("{}-{}", offset, offset + data.len().saturating_sub(1));
    client.send(
        "PATCH",
        location,
        &[OCTET, ("Content-Range", range.as_str())],
        Some(data),
    )
}

/// Closes an upload with PUT `?digest=`, optionally carrying a final chunk at an offset.
pub fn close(
    client: &Client,
    location: &str,
    digest: &str,
    chunk: Option<(&[u8], usize)>,
) -> Result<Response, String> {
    let url = with_query(&client.url(location), &format!("digest={digest}"));
    match chunk {
        Some((data, offset)) => {
            let range = format!("{}-{}", offset, offset + data.len() - 1);
            client.send(
                "PUT",
                &url,
                &[OCTET, ("Content-Range", range.as_str())],
                Some(data),
            )
        }
        None => client.send("PUT", &url, &[], Some(&[])),
    }
}

/// Checks the `Location` and `Range: 0-<end>` headers of a chunk/status response.
pub fn range_headers(resp: &Response, end: usize) -> Result<String, Finding> {
    let location = header(resp, "Location", Level::Must)?.to_owned();
    let range = header(resp, "Range", Level::Must)?;
    let expected = format!("0-{end}");
    ensure(range == expected, Level::Must, || {
        format!(
            "Range {range:?}, expected {expected:?}: {}",
            resp.describe()
        )
    })?;
    Ok(location)
}

/// Pushes `blob` into `repo` with POST then PUT, the most widely supported way.
pub fn upload(client: &Client, repo: &str, blob: &Blob) -> Result<(), Finding> {
    let (location, _) = start_session(client, repo, "", Level::Must)?;
    let url = with_query(&location, &format!("digest={}", blob.digest));
    let put = client.send("PUT", &url, &[OCTET], Some(&blob.data))?;
    status(&put, &[201], Level::Must)
}
