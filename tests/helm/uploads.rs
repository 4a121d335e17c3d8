//! Invalid uploads get 400 and change nothing.

use super::*;

#[test]
fn invalid_uploads_get_400_and_change_nothing() {
    let reg = BerthProcess::start();
    let helm = Helm::new();
    let good = helm.package("web", "1.0.0", |_| {});
    let dir = helm.path("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // Real archives with a broken Chart.yaml, made with tar.
    let archive = |name: &str, chart_yaml: Option<&str>| tar_chart(&dir, name, chart_yaml);
    let gz_text = {
        let raw = write("plain.txt", b"just some text\n");
        support::run("gzip", &["-kf", raw.to_str().unwrap()]);
        dir.join("plain.txt.gz")
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            write("text.tgz", b"hello, not a chart"),
            "not gzip-compressed",
        ),
        (gz_text, "cannot read the archive"),
        (archive("nochart", None), "no <chart>/Chart.yaml"),
        (
            archive(
                "badname",
                Some("apiVersion: v2\nname: ../web\nversion: 1.0.0\n"),
            ),
            "invalid chart name",
        ),
        (
            archive(
                "badver",
                Some("apiVersion: v2\nname: web\nversion: \"1.0\"\n"),
            ),
            "not SemVer",
        ),
        (
            archive("noversion", Some("apiVersion: v2\nname: web\n")),
            "has no version",
        ),
        (
            archive("noapi", Some("name: web\nversion: 1.0.0\n")),
            "has no apiVersion",
        ),
        (
            archive("notyaml", Some("name: [web\n")),
            "Chart.yaml is not valid",
        ),
    ];
    for (path, message) in &cases {
        for (status, body) in [
            upload_raw(&reg, "r", path, ""),
            upload_form(&reg, "r", &[("chart", path)]),
        ] {
            assert_eq!(status, 400, "{}: {body}", path.display());
            let error = serde_json::from_str::<Value>(&body).unwrap()["error"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(
                error.contains(message),
                "{}: {error:?} lacks {message:?}",
                path.display()
            );
        }
    }
    // A valid chart under a file name that names another version.
    let renamed = dir.join("web-9.9.9.tgz");
    std::fs::copy(&good, &renamed).unwrap();
    let (status, body) = upload_form(&reg, "r", &[("chart", &renamed)]);
    assert_eq!(status, 400);
    assert!(
        body.contains("the file web-9.9.9.tgz holds chart web version 1.0.0"),
        "{body}"
    );
    // A provenance file that does not describe the chart.
    let prov = write(
        "web-1.0.0.tgz.prov",
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\napiVersion: v2\nname: web\nversion: 1.0.0\n\n...\nfiles:\n  web-1.0.0.tgz: sha256:0000000000000000000000000000000000000000000000000000000000000000\n-----BEGIN PGP SIGNATURE-----\n\nx\n-----END PGP SIGNATURE-----\n",
    );
    let (status, body) = upload_form(&reg, "r", &[("chart", &good), ("prov", &prov)]);
    assert_eq!(status, 400);
    assert!(
        body.contains("the provenance file signs web-1.0.0.tgz as sha256:0000"),
        "{body}"
    );
    // Nothing to upload; a reserved or invalid repository name; too large.
    let (status, body) = curl(&["-F", "other=x", &format!("{}/helm/api/r/charts", reg.url())]);
    assert_eq!(
        (status, body.contains("no package or provenance file")),
        (400, true),
        "{body}"
    );
    assert_eq!(upload_raw(&reg, "api/x", &good, "").0, 400);
    assert_eq!(upload_raw(&reg, "Upper", &good, "").0, 400);
    let big = write("big.tgz", &vec![0x1f; 21 * 1024 * 1024]);
    assert_eq!(upload_raw(&reg, "r", &big, "").0, 413);

    // Nothing changed: no chart, no event, an empty index.
    assert!(index(&reg, "r").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/r/charts").json(), json!({}));
    assert!(events(&reg).is_empty(), "{:?}", events(&reg));
    // And the good chart still goes in.
    assert_eq!(upload_raw(&reg, "r", &good, "").0, 201);
}
