//! chart_push and chart_delete events, and durability across kill -9.

use super::*;

#[test]
fn chart_events_follow_the_contract_for_uploads_and_deletes() {
    let reg = BerthProcess::start();
    let rx = subscribe_all(&reg.url(), "charthook");
    let helm = Helm::new();
    let tgz = std::fs::read(helm.package("web", "1.2.3+build.7", |_| {})).unwrap();
    let put = http(
        "POST",
        &format!("{}/helm/api/myrepo/charts", reg.url()),
        &[("User-Agent", "berth-tests/helm")],
        &tgz,
    );
    assert_eq!(put.status, 201);
    let got = rx.next();
    assert_eq!(got.header("content-type"), Some("application/json"));
    let e = got.json();
    assert_chart_event(&e, "chart_push", "myrepo", &tgz, "web", "1.2.3+build.7");
    assert_eq!(
        e["request"],
        json!({"id": put.header("x-request-id").unwrap(), "host": reg.host, "method": "POST", "useragent": "berth-tests/helm"})
    );
    // `+` in a file name: the index's URL and the download agree.
    assert!(index(&reg, "myrepo").contains("- charts/web-1.2.3+build.7.tgz\n"));
    assert_eq!(
        get(&reg, "/helm/myrepo/charts/web-1.2.3+build.7.tgz").body,
        tgz
    );
    assert_eq!(
        get(&reg, "/helm/myrepo/charts/web-1.2.3%2Bbuild.7.tgz").body,
        tgz
    );

    let del = http(
        "DELETE",
        &format!("{}/helm/api/myrepo/charts/web/1.2.3+build.7", reg.url()),
        &[("User-Agent", "berth-tests/helm")],
        &[],
    );
    assert_eq!(del.status, 200);
    let e = rx.next().json();
    assert_chart_event(&e, "chart_delete", "myrepo", &tgz, "web", "1.2.3+build.7");
    assert_eq!(
        e["request"],
        json!({"id": del.header("x-request-id").unwrap(), "host": reg.host, "method": "DELETE", "useragent": "berth-tests/helm"})
    );
    // Exactly those two, in the log too.
    let log: Vec<String> = events(&reg)
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(log, ["chart_push", "chart_delete"]);
    assert!(rx.drain().is_empty());
}

#[test]
fn an_acknowledged_upload_survives_kill_9() {
    let mut reg = BerthProcess::start();
    let helm = Helm::new();
    let path = helm.package("web", "1.0.0", |_| {});
    let tgz = std::fs::read(&path).unwrap();
    assert_eq!(upload_raw(&reg, "durable", &path, "").0, 201);
    // Served once (the index is now cached in memory), then killed at once.
    assert!(index(&reg, "durable").contains("version: \"1.0.0\""));
    reg.kill9();
    let reg = reg.restart();
    assert!(index(&reg, "durable").contains(&digest(&tgz)[7..]));
    assert_eq!(get(&reg, "/helm/durable/charts/web-1.0.0.tgz").body, tgz);
    let log = events(&reg);
    assert_eq!(log.len(), 1);
    assert_chart_event(&log[0], "chart_push", "durable", &tgz, "web", "1.0.0");
    helm.run(&[
        "repo",
        "add",
        "durable",
        &format!("{}/helm/durable", reg.url()),
    ]);
    assert!(helm
        .run(&["search", "repo", "durable/web"])
        .contains("1.0.0"));
}
