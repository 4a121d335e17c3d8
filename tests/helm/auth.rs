//! helm registry login against Berth with access control.

use super::*;

#[test]
fn helm_registry_login_guards_oci_charts_and_the_chart_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("htpasswd");
    std::fs::write(&file, support::htpasswd("ci", "ci-pw")).unwrap();
    let reg = BerthProcess::with_config(&format!(
        "[auth]\nhtpasswd = \"{}\"\ndefault_role = \"push\"\n",
        file.display()
    ));
    let helm = Helm::new();
    let tgz = helm.package("web", "1.0.0", |_| {});
    let target = format!("oci://{}/charts", reg.host);

    // Without logging in, helm is refused; a wrong password does not log in.
    let refused = helm.output(&["push", tgz.to_str().unwrap(), &target, "--plain-http"]);
    assert!(!refused.status.success(), "pushed without credentials");
    let login = |password: &str| {
        let mut cmd = Command::new("helm");
        cmd.args([
            "registry",
            "login",
            &reg.host,
            "-u",
            "ci",
            "--password-stdin",
            "--plain-http",
        ])
        .env("HELM_CONFIG_HOME", helm.path(".config"))
        .env("HELM_CACHE_HOME", helm.path(".cache"))
        .env("HELM_DATA_HOME", helm.path(".data"));
        support::output_with_stdin(&mut cmd, password)
    };
    assert!(
        !login("wrong").status.success(),
        "logged in with a wrong password"
    );
    let ok = login("ci-pw");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // Logged in: push, pull back byte for byte.
    helm.run(&["push", tgz.to_str().unwrap(), &target, "--plain-http"]);
    let out = helm.path("pulled");
    std::fs::create_dir(&out).unwrap();
    helm.run(&[
        "pull",
        &format!("{target}/web"),
        "--version",
        "1.0.0",
        "--plain-http",
        "-d",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(out.join("web-1.0.0.tgz")).unwrap(),
        std::fs::read(&tgz).unwrap()
    );

    // The ChartMuseum API needs the same credentials.
    assert_eq!(upload_raw(&reg, "private", &tgz, "").0, 401);
    assert_eq!(get(&reg, "/helm/private/index.yaml").status, 401);
}
