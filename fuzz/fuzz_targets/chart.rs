//! Chart parsing (`helm::chart::parse` for uploaded `.tgz` archives, and
//! `helm::metadata::Metadata::parse` for `Chart.yaml`) on arbitrary bytes:
//! the first byte picks which. Beyond not panicking: what is accepted has
//! a valid chart name and SemVer version, and a `{name}-{version}.tgz` file
//! name.

#![no_main]

use helm::metadata::{self, Metadata};
use libfuzzer_sys::fuzz_target;

fn check(m: &Metadata) {
    assert!(metadata::check_name(&m.name).is_ok(), "{:?}", m.name);
    assert!(metadata::parse_version(&m.version).is_ok(), "{:?}", m.version);
    assert_eq!(m.file_name(), format!("{}-{}.tgz", m.name, m.version));
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let parsed = if selector % 2 == 0 {
        helm::chart::parse(body)
    } else {
        Metadata::parse(body)
    };
    if let Ok(m) = parsed {
        check(&m);
    }
});
