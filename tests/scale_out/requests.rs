use super::*;

/// An upload started on one replica continues with PATCHes on a second and
/// a third and finishes on the first; what one replica changed, the next
/// request to another sees at once.
#[test]
fn one_upload_crosses_three_replicas_and_every_replica_sees_every_change() {
    let store = SharedStore::new();
    let regs: Vec<BerthProcess> = (0..3).map(|_| store.replica("", "")).collect();
    let (a, b, c) = (&regs[0], &regs[1], &regs[2]);
    let data = support::random_bytes(3 << 20, 7);
    let digest = support::digest(&data);

    let post = http(
        "POST",
        &format!("{}/v2/x/app/blobs/uploads/", a.url()),
        &[],
        &[],
    );
    assert_eq!(post.status, 202);
    let path = post.header("location").unwrap().to_owned();
    let mut sent = 0;
    for (reg, chunk) in [(b, &data[..1 << 20]), (c, &data[1 << 20..])] {
        let end = sent + chunk.len() - 1;
        let r = http(
            "PATCH",
            &format!("{}{path}", reg.url()),
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", &format!("{sent}-{end}")),
            ],
            chunk,
        );
        assert_eq!(r.status, 202, "PATCH on {}", reg.host);
        assert_eq!(r.header("range"), Some(format!("0-{end}").as_str()));
        sent += chunk.len();
    }
    let status = get(c, &path);
    assert_eq!(status.status, 204);
    assert_eq!(
        status.header("range"),
        Some(format!("0-{}", data.len() - 1).as_str())
    );
    let sep = if path.contains('?') { '&' } else { '?' };
    let put = http(
        "PUT",
        &format!("{}{path}{sep}digest={digest}", a.url()),
        &[],
        &[],
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    for reg in &regs {
        let r = get(reg, &format!("/v2/x/app/blobs/{digest}"));
        assert!(r.status == 200 && r.body == data, "blob on {}", reg.host);
    }

    // Tags, catalog, referrers and deletes: made on one, seen on the others.
    let (image, put) = support::push_image(&b.url(), "x/app", "v1", 3);
    assert_eq!(put.status, 201);
    let image_digest = support::digest(&image);
    assert_eq!(manifest(c, "x/app", "v1"), image);
    assert_eq!(get(a, "/v2/x/app/tags/list").json()["tags"], json!(["v1"]));
    assert_eq!(
        get(c, "/v2/_catalog").json()["repositories"],
        json!(["x/app"])
    );
    let config = support::push_blob(&c.url(), "x/app", b"{}");
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image_digest, "size": image.len()},
    });
    let r = http(
        "PUT",
        &format!("{}/v2/x/app/manifests/sbom", c.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        referrer.to_string().as_bytes(),
    );
    assert_eq!(r.status, 201);
    let listed = get(a, &format!("/v2/x/app/referrers/{image_digest}")).json();
    assert_eq!(listed["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    let r = http(
        "DELETE",
        &format!("{}/v2/x/app/manifests/v1", a.url()),
        &[],
        &[],
    );
    assert_eq!(r.status, 202);
    assert_eq!(get(b, "/v2/x/app/manifests/v1").status, 404);

    // Each replica counts the statements it sent to PostgreSQL.
    let metrics = String::from_utf8(get(a, "/metrics").body).unwrap();
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("berth_metadata_statements_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(sent > 0);

    // Stateless: nothing landed in any replica's own data directory.
    for reg in &regs {
        let left: Vec<_> = std::fs::read_dir(reg.dir())
            .map(|d| d.map(|e| e.unwrap().file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{} wrote {left:?}", reg.host);
    }
}

/// Quarantine is one state: a manifest held on one replica is hidden on
/// every one, and a decision made through one releases it everywhere.
#[test]
fn quarantine_holds_and_releases_on_every_replica() {
    let store = SharedStore::new();
    let (a, b) = (
        store.replica("", "quarantine = true"),
        store.replica("", "quarantine = true"),
    );
    let (image, put) = support::push_image(&a.url(), "q/app", "v1", 5);
    assert_eq!(put.status, 201);
    let digest = support::digest(&image);
    assert_eq!(get(&b, "/v2/q/app/manifests/v1").status, 404);
    let held = api(&b, "GET", "/api/quarantine", None).json();
    assert!(held.to_string().contains(&digest), "{held}");
    let r = api(
        &b,
        "PATCH",
        &format!("/api/quarantine/q/app/{digest}"),
        Some(json!({"state": "Passed", "details": "clean"})),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(manifest(&a, "q/app", "v1"), image);
    assert_blobs_pull(&a, "q/app", &image);
}
