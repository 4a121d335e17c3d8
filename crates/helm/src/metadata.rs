//! A chart's `Chart.yaml`, reduced to the keys Helm knows.
//!
//! Helm reads `index.yaml` strictly: an unknown key fails `helm repo add`.
//! So a chart's metadata is parsed into this struct, which ignores whatever
//! else a `Chart.yaml` holds, and only these keys are ever written back (the
//! keys of Helm's `chart.Metadata`, `Maintainer` and `Dependency`, as every
//! Helm 3 and 4 client knows them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Longest chart name accepted.
const MAX_NAME: usize = 250;

/// The metadata of one chart version, as Helm's `chart.Metadata`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Metadata {
    /// The API version of the chart (`v1` or `v2`); required.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The version of the application packaged.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    /// Annotations, uninterpreted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// A YAML path enabling the chart as a dependency.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Charts this chart depends on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// Whether the chart is deprecated.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    /// A one-sentence description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The project's home page.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub home: String,
    /// The URL of an icon.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon: String,
    /// Search keywords.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// A SemVer range of supported Kubernetes versions.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    /// Who maintains the chart.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Maintainer>,
    /// The chart's name; required.
    pub name: String,
    /// Source code URLs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Tags enabling the chart as a dependency (one string, as in Helm).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tags: String,
    /// `application` or `library`.
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
    /// The chart's SemVer version; required.
    pub version: String,
}

/// One maintainer of a chart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Maintainer {
    /// Person or organisation.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Contact address.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// Contact URL.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// One dependency of a chart (`name` and `repository` are always written,
/// as Helm does).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Dependency {
    /// The dependency's chart name.
    pub name: String,
    /// A version or SemVer range.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Where it comes from.
    pub repository: String,
    /// A YAML path enabling it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Tags enabling it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether it is enabled.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    /// Values imported from it: strings or `{child, parent}` maps.
    #[serde(rename = "import-values", skip_serializing_if = "Vec::is_empty")]
    pub import_values: Vec<serde_json::Value>,
    /// The name it is used under.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

impl Metadata {
    /// Parses a `Chart.yaml` and checks what the repository relies on: an
    /// API version, a name usable in a file name and a URL, a SemVer
    /// version, and a known chart type.
    pub fn parse(yaml: &[u8]) -> Result<Self, Error> {
        let md: Self = yaml_serde::from_slice(yaml)
            .map_err(|e| Error::BadRequest(format!("Chart.yaml is not valid: {e}")))?;
        if md.api_version.is_empty() {
            return Err(Error::BadRequest("Chart.yaml has no apiVersion".to_owned()));
        }
        check_name(&md.name)?;
        parse_version(&md.version)?;
        if !matches!(md.chart_type.as_str(), "" | "application" | "library") {
            return Err(Error::BadRequest(format!(
                "chart type {:?} is neither application nor library",
                md.chart_type
            )));
        }
        Ok(md)
    }

    /// `{name}-{version}.tgz`, the chart's file name in the repository.
    pub fn file_name(&self) -> String {
        format!("{}-{}.tgz", self.name, self.version)
    }
}

/// Checks a chart name: letters, digits, `.`, `_` and `-`, starting with a
/// letter or digit, at most 250 characters (it becomes part of a file name
/// and of URLs).
pub fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else if name.is_empty() {
        Err(Error::BadRequest("Chart.yaml has no name".to_owned()))
    } else {
        Err(Error::BadRequest(format!(
            "invalid chart name {name:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit"
        )))
    }
}

/// Parses a chart version: SemVer 2.0 (`MAJOR.MINOR.PATCH[-pre][+build]`),
/// with the optional leading `v` Helm also accepts.
pub fn parse_version(version: &str) -> Result<semver::Version, Error> {
    if version.is_empty() {
        return Err(Error::BadRequest("Chart.yaml has no version".to_owned()));
    }
    semver::Version::parse(version.strip_prefix('v').unwrap_or(version)).map_err(|e| {
        Error::BadRequest(format!(
            "invalid chart version {version:?}: not SemVer 2 (MAJOR.MINOR.PATCH): {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_dropped_and_scalars_stay_text() {
        let md = Metadata::parse(
            b"apiVersion: v2\nname: web\nversion: 1.2.3\nappVersion: 1.10\nfoo: bar\n\
              annotations:\n  enabled: true\nmaintainers:\n- name: me\n  extra: 1\n",
        )
        .unwrap();
        assert_eq!(md.app_version, "1.10");
        assert_eq!(md.annotations["enabled"], "true");
        assert_eq!(md.maintainers[0].name, "me");
        let json = serde_json::to_value(&md).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"apiVersion": "v2", "appVersion": "1.10", "annotations": {"enabled": "true"},
                "maintainers": [{"name": "me"}], "name": "web", "version": "1.2.3"})
        );
    }

    #[test]
    fn names_versions_and_types_are_checked() {
        let chart = |name: &str, version: &str, extra: &str| {
            Metadata::parse(
                format!("apiVersion: v2\nname: {name}\nversion: {version}\n{extra}").as_bytes(),
            )
        };
        assert!(chart("my-chart_1.x", "1.0.0-rc.1+b7", "").is_ok());
        assert!(chart("web", "v1.0.0", "type: library").is_ok());
        for (name, version, extra) in [
            ("../etc", "1.0.0", ""),
            ("-x", "1.0.0", ""),
            ("a/b", "1.0.0", ""),
            ("\"a b\"", "1.0.0", ""),
            ("web", "1.0", ""),
            ("web", "01.0.0", ""),
            ("web", "latest", ""),
            ("web", "1.0.0", "type: plugin"),
        ] {
            let err = chart(name, version, extra).unwrap_err();
            assert!(matches!(err, Error::BadRequest(_)), "{name} {version}");
        }
        assert!(Metadata::parse(b"name: web\nversion: 1.0.0\n").is_err());
        assert!(Metadata::parse(b"apiVersion: v2\nversion: 1.0.0\n").is_err());
        assert!(Metadata::parse(b"[not, a, map]").is_err());
    }
}
