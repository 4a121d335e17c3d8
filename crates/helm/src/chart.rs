//! Reading an uploaded chart archive: a gzip-compressed tar whose files
//! all sit under one base directory, with the chart's `Chart.yaml` there.
//!
//! The rules are Helm's own loader's (`helm install` would refuse an archive
//! breaking them), checked before anything is stored; the unpacked size is
//! bounded as in Helm, so a gzip bomb costs nothing.

use std::io::{self, Read};

use crate::metadata::Metadata;
use crate::Error;

/// Largest unpacked archive (Helm's default `MaxDecompressedChartSize`).
const MAX_UNPACKED: u64 = 100 * 1024 * 1024;
/// Largest `Chart.yaml` (Helm's default `MaxDecompressedFileSize`).
const MAX_CHART_YAML: u64 = 5 * 1024 * 1024;

/// The metadata of the chart archive `bytes`, or why it is not a chart.
pub fn parse(bytes: &[u8]) -> Result<Metadata, Error> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(Error::BadRequest(
            "not a chart: the upload is not gzip-compressed (expected a .tgz made by `helm package`)"
                .to_owned(),
        ));
    }
    let unpacked = Limited {
        inner: flate2::read::GzDecoder::new(bytes),
        left: MAX_UNPACKED,
    };
    let mut archive = tar::Archive::new(unpacked);
    let mut chart_yaml = None;
    let entries = archive.entries().map_err(not_a_tar)?;
    for entry in entries {
        let mut entry = entry.map_err(not_a_tar)?;
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let path = entry.path().map_err(not_a_tar)?.into_owned();
        let path = path.to_string_lossy().replace('\\', "/");
        if path.starts_with('/') {
            return Err(Error::BadRequest(format!(
                "not a chart: the archive holds an absolute path {path:?}"
            )));
        }
        let parts: Vec<&str> = path
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        if parts.contains(&"..") {
            return Err(Error::BadRequest(format!(
                "not a chart: the archive path {path:?} leaves its directory"
            )));
        }
        match parts.as_slice() {
            // PAX and GNU long-name headers are read by `tar` itself; a
            // plain file at the top is content outside the chart.
            [] => continue,
            [file] => {
                return Err(Error::BadRequest(format!(
                    "not a chart: {file:?} lies outside the chart's base directory"
                )))
            }
            [_, "Chart.yaml"] if chart_yaml.is_none() => {
                let mut yaml = Vec::new();
                (&mut entry)
                    .take(MAX_CHART_YAML + 1)
                    .read_to_end(&mut yaml)
                    .map_err(not_a_tar)?;
                if yaml.len() as u64 > MAX_CHART_YAML {
                    return Err(Error::BadRequest("Chart.yaml is too large".to_owned()));
                }
                chart_yaml = Some(yaml);
            }
            _ => {}
        }
    }
    // Read to the end, so that a truncated or corrupt gzip stream (its CRC is
    // in the trailer) is refused too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(not_a_tar)?;
    let yaml = chart_yaml.ok_or_else(|| {
        Error::BadRequest("not a chart: the archive has no <chart>/Chart.yaml".to_owned())
    })?;
    Metadata::parse(&yaml)
}

fn not_a_tar(e: io::Error) -> Error {
    Error::BadRequest(format!("not a chart: cannot read the archive: {e}"))
}

/// A reader that fails once more than `left` bytes came out of `inner`.
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!("it unpacks to more than {MAX_UNPACKED} bytes"))
        })?;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `.tgz` holding `files` (path, content).
    pub(crate) fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, path, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    const CHART: &[u8] = b"apiVersion: v2\nname: web\nversion: 0.1.0\n";

    #[test]
    fn reads_the_base_directory_chart_yaml() {
        let bytes = tgz(&[
            ("web/values.yaml", b"a: 1\n"),
            (
                "web/charts/sub/Chart.yaml",
                b"apiVersion: v2\nname: sub\nversion: 9.9.9\n",
            ),
            ("web/Chart.yaml", CHART),
        ]);
        let md = parse(&bytes).unwrap();
        assert_eq!((md.name.as_str(), md.version.as_str()), ("web", "0.1.0"));
    }

    #[test]
    fn refuses_what_is_not_a_chart() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"plain text".to_vec(), "not gzip-compressed"),
            (gzip(b"not a tar archive at all"), "cannot read the archive"),
            (
                tgz(&[("web/values.yaml", b"a: 1\n")]),
                "no <chart>/Chart.yaml",
            ),
            (
                tgz(&[("Chart.yaml", CHART)]),
                "outside the chart's base directory",
            ),
            (
                tgz(&[("web/Chart.yaml", b"apiVersion: v2\nname: web\nversion: 1\n")]),
                "not SemVer",
            ),
        ];
        for (bytes, expected) in cases {
            let err = parse(&bytes).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
        let mut truncated = tgz(&[("web/Chart.yaml", CHART)]);
        truncated.truncate(truncated.len() - 4);
        assert!(parse(&truncated).is_err());
    }

    #[test]
    fn bounds_the_unpacked_size() {
        let big = vec![0u8; (MAX_UNPACKED + 1024) as usize];
        let err = parse(&tgz(&[("web/Chart.yaml", CHART), ("web/big", &big)])).unwrap_err();
        assert!(err.to_string().contains("unpacks to more than"), "{err}");
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }
}
