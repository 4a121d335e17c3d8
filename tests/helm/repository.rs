//! The classic chart repository with the real helm client, and ChartMuseum's API.

use super::*;

#[test]
fn helm_uses_the_repository_and_the_api_answers_as_chartmuseum() {
    let reg = BerthProcess::start();
    let helm = Helm::new();
    let repo = "team/apps";
    // A pre-release and 0.10.0 > 0.2.0: SemVer order, not text order.
    let versions = ["0.1.0", "0.2.0", "0.10.0", "1.0.0-rc.1"];
    // Text YAML could read as something else must reach helm as text
    // through index.yaml; unknown keys must not reach it at all.
    let tricky = |dir: &Path| {
        let chart = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap();
        let chart = chart
            .replace("appVersion: \"1.16.0\"", "appVersion: \"1.10\"")
            .replace(
                "description: A Helm chart for Kubernetes",
                "description: 'yes: no # not a comment'\nkeywords: ['on', 'null', '0755']\nx-custom-key: dropped",
            );
        std::fs::write(dir.join("Chart.yaml"), chart).unwrap();
    };
    let tgz: Vec<PathBuf> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            helm.package("web", v, |dir| {
                if i == 0 {
                    tricky(dir)
                }
            })
        })
        .collect();
    // Added before the first upload: an empty repository has an empty index.
    let url = format!("{}/helm/{repo}", reg.url());
    helm.run(&["repo", "add", "apps", &url]);
    assert!(index(&reg, repo).contains("entries: {}"));

    for (i, path) in tgz.iter().enumerate() {
        let (status, body) = if i % 2 == 0 {
            upload_raw(&reg, repo, path, "")
        } else {
            upload_form(&reg, repo, &[("chart", path)])
        };
        assert_eq!((status, body.as_str()), (201, r#"{"saved":true}"#));
    }

    // index.yaml: newest first by SemVer, digests and relative URLs.
    let text = index(&reg, repo);
    assert!(
        text.starts_with("apiVersion: v1\nentries:\n  web:\n"),
        "{text}"
    );
    let positions: Vec<usize> = ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]
        .iter()
        .map(|v| text.find(&format!("version: \"{v}\"\n")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    let first = std::fs::read(&tgz[0]).unwrap();
    assert!(text.contains(&digest(&first)[7..]));
    assert!(text.contains("- charts/web-0.1.0.tgz\n"));

    // helm sees every version, pulls one byte for byte, renders one.
    helm.run(&["repo", "update"]);
    let found: Value = serde_json::from_str(&helm.run(&[
        "search",
        "repo",
        "apps/web",
        "--versions",
        "--devel",
        "-o",
        "json",
    ]))
    .unwrap();
    let seen: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]);
    let tricky_entry = &found.as_array().unwrap()[3];
    assert_eq!(tricky_entry["app_version"], "1.10");
    assert_eq!(tricky_entry["description"], "yes: no # not a comment");
    assert!(!text.contains("x-custom-key"), "{text}");
    let pulled = helm.path("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    helm.run(&[
        "pull",
        "apps/web",
        "--version",
        "0.2.0",
        "-d",
        pulled.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(pulled.join("web-0.2.0.tgz")).unwrap(),
        std::fs::read(&tgz[1]).unwrap()
    );
    let rendered = helm.run(&["template", "rel", "apps/web", "--version", "0.10.0"]);
    assert!(
        rendered.contains("name: rel-web") && rendered.contains("helm.sh/chart: web-0.10.0"),
        "{rendered}"
    );
    let installed = helm.run(&[
        "install",
        "rel",
        "apps/web",
        "--version",
        "0.2.0",
        "--dry-run=client",
    ]);
    assert!(installed.contains("Dry run complete"), "{installed}");

    // The API.
    let all = get(&reg, &format!("/helm/api/{repo}/charts")).json();
    assert_eq!(all.as_object().unwrap().keys().collect::<Vec<_>>(), ["web"]);
    let listed: Vec<&str> = all["web"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]);
    let one = get(&reg, &format!("/helm/api/{repo}/charts/web/0.1.0")).json();
    assert_eq!(one["name"], "web");
    assert_eq!(one["digest"], &digest(&first)[7..]);
    assert_eq!(one["urls"], json!(["charts/web-0.1.0.tgz"]));
    assert_eq!(one["apiVersion"], "v2");
    assert_eq!(one["keywords"], json!(["on", "null", "0755"]));
    // `latest` skips pre-releases, as ChartMuseum does.
    let latest = get(&reg, &format!("/helm/api/{repo}/charts/web/latest")).json();
    assert_eq!(latest["version"], "0.10.0");
    assert_eq!(
        get(&reg, &format!("/helm/api/{repo}/charts/web")).json(),
        all["web"]
    );
    let page = get(&reg, &format!("/helm/api/{repo}/charts?offset=1")).json();
    assert_eq!(page, json!({}));
    for (path, status) in [
        (format!("/helm/api/{repo}/charts/web"), 200),
        (format!("/helm/api/{repo}/charts/web/0.2.0"), 200),
        (format!("/helm/api/{repo}/charts/web/latest"), 200),
        (format!("/helm/api/{repo}/charts/nope"), 404),
        (format!("/helm/api/{repo}/charts/web/9.9.9"), 404),
        (format!("/helm/{repo}/index.yaml"), 200),
        (format!("/helm/{repo}/charts/web-0.1.0.tgz"), 200),
        (format!("/helm/{repo}/charts/web-9.9.9.tgz"), 404),
    ] {
        let r = http("HEAD", &format!("{}{path}", reg.url()), &[], &[]);
        assert_eq!(r.status, status, "HEAD {path}");
        assert!(r.body.is_empty(), "HEAD {path} has a body");
    }
    let missing = get(&reg, &format!("/helm/api/{repo}/charts/web/9.9.9"));
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json(),
        json!({"error": "chart web version 9.9.9 not found"})
    );
    let download = get(&reg, &format!("/helm/{repo}/charts/web-0.1.0.tgz"));
    assert_eq!(download.body, first);
    assert_eq!(download.header("content-type"), Some("application/gzip"));
    // Another repository is another namespace.
    assert!(index(&reg, "other").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/other/charts").json(), json!({}));
    let bad = get(&reg, "/helm/api/Bad/charts");
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]
        .as_str()
        .unwrap()
        .contains("invalid repository name"));
    assert_eq!(
        http(
            "PUT",
            &format!("{}/helm/api/{repo}/charts", reg.url()),
            &[],
            &[]
        )
        .status,
        405
    );
}

#[test]
fn overwrites_need_force_and_deletes_leave_the_index() {
    let reg = BerthProcess::start();
    let helm = Helm::new();
    let v1 = helm.package("web", "1.0.0", |_| {});
    let first = std::fs::read(&v1).unwrap();
    assert_eq!(upload_raw(&reg, "r", &v1, "").0, 201);
    let (status, body) = upload_raw(&reg, "r", &v1, "");
    assert_eq!(status, 409);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"error": "web-1.0.0.tgz already exists; add ?force to overwrite it"})
    );
    let (status, _) = upload_form(&reg, "r", &[("chart", &v1)]);
    assert_eq!(status, 409);

    // Different content, same version: ?force replaces it and its digest.
    let changed = helm.package("web", "1.0.0", |dir| {
        std::fs::write(dir.join("values.yaml"), "replicaCount: 3\n").unwrap();
    });
    let second = std::fs::read(&changed).unwrap();
    assert_ne!(digest(&first), digest(&second));
    assert_eq!(upload_raw(&reg, "r", &changed, "?force").0, 201);
    let text = index(&reg, "r");
    assert!(text.contains(&digest(&second)[7..]) && !text.contains(&digest(&first)[7..]));
    assert_eq!(text.matches("version: \"1.0.0\"\n").count(), 1);
    assert_eq!(get(&reg, "/helm/r/charts/web-1.0.0.tgz").body, second);
    helm.run(&["repo", "add", "r", &format!("{}/helm/r", reg.url())]);
    let values = helm.run(&["show", "values", "r/web"]);
    assert_eq!(values, "replicaCount: 3");

    // Delete: 200 once, then 404; the index, the API and helm forget it.
    let v2 = helm.package("web", "2.0.0", |_| {});
    assert_eq!(upload_raw(&reg, "r", &v2, "").0, 201);
    let url = format!("{}/helm/api/r/charts/web/1.0.0", reg.url());
    let deleted = http("DELETE", &url, &[], &[]);
    assert_eq!(
        (deleted.status, deleted.json()),
        (200, json!({"deleted": true}))
    );
    let again = http("DELETE", &url, &[], &[]);
    assert_eq!(again.status, 404);
    assert_eq!(
        again.json(),
        json!({"error": "chart web version 1.0.0 not found"})
    );
    let text = index(&reg, "r");
    assert!(
        !text.contains("version: \"1.0.0\"") && text.contains("version: \"2.0.0\""),
        "{text}"
    );
    assert_eq!(get(&reg, "/helm/r/charts/web-1.0.0.tgz").status, 404);
    assert_eq!(get(&reg, "/helm/api/r/charts/web/1.0.0").status, 404);
    helm.run(&["repo", "update"]);
    let found = helm.run(&["search", "repo", "r/web", "--versions", "-o", "json"]);
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["version"], "2.0.0");
    // Two charts cannot share a file name: `a-1.0.0` 1.0.0 and `a` 1.0.0-1.0.0.
    let dir = helm.path("same-file");
    std::fs::create_dir_all(&dir).unwrap();
    let one = tar_chart(
        &dir,
        "one",
        Some("apiVersion: v2\nname: a-1.0.0\nversion: 1.0.0\n"),
    );
    let two = tar_chart(
        &dir,
        "two",
        Some("apiVersion: v2\nname: a\nversion: 1.0.0-1.0.0\n"),
    );
    assert_eq!(upload_raw(&reg, "r", &one, "").0, 201);
    let (status, body) = upload_raw(&reg, "r", &two, "?force");
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("a-1.0.0-1.0.0.tgz is already the file of chart a-1.0.0 version 1.0.0"),
        "{body}"
    );
    assert_eq!(
        get(&reg, "/helm/r/charts/a-1.0.0-1.0.0.tgz").body,
        std::fs::read(&one).unwrap()
    );
    let url = format!("{}/helm/api/r/charts/a-1.0.0/1.0.0", reg.url());
    assert_eq!(http("DELETE", &url, &[], &[]).status, 200);

    // Deleting the last version empties the index.
    assert_eq!(
        http(
            "DELETE",
            &format!("{}/helm/api/r/charts/web/2.0.0", reg.url()),
            &[],
            &[]
        )
        .status,
        200
    );
    assert!(index(&reg, "r").contains("entries: {}"));
    assert_eq!(get(&reg, "/helm/api/r/charts/web").status, 404);
}
