//! Provenance files (`{name}-{version}.tgz.prov`, from `helm package --sign`).
//!
//! A provenance file is an OpenPGP clear-signed message whose text is the
//! chart's `Chart.yaml`, a `...` line, and a `files:` map from the archive's
//! file name to its `sha256:` digest. The repository does not verify the
//! signature (clients do, with their keyring: `helm pull --verify`), but it
//! refuses a provenance file that does not describe the chart it is stored
//! with, since the client's check would then fail for everyone.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::metadata::Metadata;
use crate::Error;

const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";

/// What a provenance file says about its chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    /// The chart's name.
    pub name: String,
    /// The chart's version.
    pub version: String,
    /// Archive file name to `sha256:<hex>` digest.
    pub files: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct NameVersion {
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
}

#[derive(Deserialize)]
struct Files {
    #[serde(default)]
    files: BTreeMap<String, String>,
}

impl Provenance {
    /// Parses the clear-signed text of a provenance file.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadRequest(format!("invalid provenance file: {why}"));
        let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8 text"))?;
        let rest = text
            .trim_start()
            .strip_prefix(BEGIN)
            .ok_or_else(|| bad("it does not start with a PGP signed message"))?;
        // Armor headers (`Hash: SHA512`) end at the first empty line.
        let (_, signed) = rest
            .split_once("\n\n")
            .or_else(|| rest.split_once("\r\n\r\n"))
            .ok_or_else(|| bad("no signed text"))?;
        let (signed, _) = signed
            .split_once(SIGNATURE)
            .ok_or_else(|| bad("no signature"))?;
        // Clear-signed text escapes lines starting with `-` as `- -...`.
        let signed: String = signed
            .lines()
            .map(|l| l.strip_prefix("- ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let (chart, files) = signed
            .split_once("\n...\n")
            .ok_or_else(|| bad("no `...` line between the metadata and the files"))?;
        let chart: NameVersion = yaml_serde::from_str(chart)
            .map_err(|e| bad(&format!("unreadable chart metadata: {e}")))?;
        let files: Files =
            yaml_serde::from_str(files).map_err(|e| bad(&format!("unreadable files: {e}")))?;
        if chart.name.is_empty() || chart.version.is_empty() {
            return Err(bad("no chart name or version"));
        }
        Ok(Self {
            name: chart.name,
            version: chart.version,
            files: files.files,
        })
    }

    /// Checks that this provenance file describes the chart `md` whose
    /// archive has the digest `digest` (`sha256:<hex>`).
    pub fn check(&self, md: &Metadata, digest: &str) -> Result<(), Error> {
        if (self.name.as_str(), self.version.as_str()) != (md.name.as_str(), md.version.as_str()) {
            return Err(Error::BadRequest(format!(
                "the provenance file is for {}-{}, not for {}-{}",
                self.name, self.version, md.name, md.version
            )));
        }
        let file = md.file_name();
        match self.files.get(&file) {
            Some(signed) if signed == digest => Ok(()),
            Some(signed) => Err(Error::BadRequest(format!(
                "the provenance file signs {file} as {signed}, but the stored chart is {digest}"
            ))),
            None => Err(Error::BadRequest(format!(
                "the provenance file does not sign {file}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prov(digest: &str) -> String {
        format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\napiVersion: v2\nname: web\nversion: 0.1.0\n\n\
             ...\nfiles:\n  web-0.1.0.tgz: {digest}\n-----BEGIN PGP SIGNATURE-----\n\nwsBcBAEBCgAQBQJ\n\
             -----END PGP SIGNATURE-----\n"
        )
    }

    #[test]
    fn reads_name_version_and_files() {
        let p = Provenance::parse(prov("sha256:ab").as_bytes()).unwrap();
        assert_eq!((p.name.as_str(), p.version.as_str()), ("web", "0.1.0"));
        assert_eq!(p.files["web-0.1.0.tgz"], "sha256:ab");
        let md = Metadata::parse(b"apiVersion: v2\nname: web\nversion: 0.1.0\n").unwrap();
        assert!(p.check(&md, "sha256:ab").is_ok());
        assert!(p.check(&md, "sha256:cd").is_err());
        let other = Metadata::parse(b"apiVersion: v2\nname: web\nversion: 0.2.0\n").unwrap();
        assert!(p.check(&other, "sha256:ab").is_err());
    }

    #[test]
    fn refuses_other_text() {
        for bad in [
            "",
            "name: web\nversion: 1.0.0\n",
            "-----BEGIN PGP SIGNED MESSAGE-----\n",
        ] {
            assert!(Provenance::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
