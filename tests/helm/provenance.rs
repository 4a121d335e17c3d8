//! Provenance files for `helm pull --verify`.

use super::*;

#[test]
fn provenance_files_are_served_for_helm_verify() {
    let reg = BerthProcess::start();
    let helm = Helm::new();
    // A throwaway signing key, exported as the legacy keyrings helm reads.
    let gnupg = helm.path("gnupg");
    std::fs::create_dir_all(&gnupg).unwrap();
    let gpg = |args: &[&str]| -> Vec<u8> {
        let out = Command::new("gpg")
            .args(["--batch", "--homedir", gnupg.to_str().unwrap()])
            .args(args)
            .output()
            .expect("run gpg");
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "Berth Test <berth@example.com>",
        "rsa2048",
        "sign",
        "never",
    ]);
    let secring = helm.path("secring.gpg");
    let pubring = helm.path("pubring.gpg");
    std::fs::write(&secring, gpg(&["--export-secret-keys"])).unwrap();
    std::fs::write(&pubring, gpg(&["--export"])).unwrap();
    helm.run(&["create", "web"]);
    let out = helm.path("out");
    let sign = |version: &str| {
        helm.run(&[
            "package",
            "web",
            "--version",
            version,
            "--sign",
            "--key",
            "Berth Test",
            "--keyring",
            secring.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ]);
        (
            out.join(format!("web-{version}.tgz")),
            out.join(format!("web-{version}.tgz.prov")),
        )
    };

    // Chart and provenance in one multipart upload.
    let (tgz, prov) = sign("1.0.0");
    assert_eq!(
        upload_form(&reg, "signed", &[("chart", &tgz), ("prov", &prov)]).0,
        201
    );
    let served = get(&reg, "/helm/signed/charts/web-1.0.0.tgz.prov");
    assert_eq!(served.body, std::fs::read(&prov).unwrap());
    assert_eq!(
        served.header("content-type"),
        Some("application/pgp-signature")
    );
    helm.run(&[
        "repo",
        "add",
        "signed",
        &format!("{}/helm/signed", reg.url()),
    ]);
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    let verified = helm.output(&[
        "pull",
        "signed/web",
        "--version",
        "1.0.0",
        "--verify",
        "--keyring",
        pubring.to_str().unwrap(),
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("Signed by: Berth Test"));

    // The chart first, its provenance file afterwards (`/prov`, raw body).
    let (tgz2, prov2) = sign("2.0.0");
    assert_eq!(upload_raw(&reg, "signed", &tgz2, "").0, 201);
    assert_eq!(
        get(&reg, "/helm/signed/charts/web-2.0.0.tgz.prov").status,
        404
    );
    let prov_url = format!("{}/helm/api/signed/prov", reg.url());
    let prov_arg = format!("@{}", prov2.display());
    assert_eq!(
        curl(&["--data-binary", &prov_arg, &prov_url]),
        (201, r#"{"saved":true}"#.to_owned())
    );
    let (status, body) = curl(&["--data-binary", &prov_arg, &prov_url]);
    assert_eq!(
        (status, body.contains("already exists")),
        (409, true),
        "{body}"
    );
    assert_eq!(
        curl(&["--data-binary", &prov_arg, &format!("{prov_url}?force")]).0,
        201
    );
    assert_eq!(
        get(&reg, "/helm/signed/charts/web-2.0.0.tgz.prov").body,
        std::fs::read(&prov2).unwrap()
    );
    // A provenance file for a chart that is not there.
    let (_, prov3) = sign("3.0.0");
    let (status, body) = curl(&["--data-binary", &format!("@{}", prov3.display()), &prov_url]);
    assert_eq!(
        (status, body.contains("upload the chart first")),
        (404, true),
        "{body}"
    );
    // The provenance file of 1.0.0 for 2.0.0's chart: refused.
    let (status, body) = upload_form(&reg, "signed", &[("chart", &tgz2), ("prov", &prov)]);
    assert_eq!(status, 400, "{body}");
}
