//! Which events reach which webhooks: scope, status, actions.

use super::*;

#[test]
fn scope_status_and_actions_select_the_webhooks() {
    let reg = BerthProcess::start();
    let hooks = [
        ("everything", json!({"actions": ["push"]})),
        ("appstar", json!({"actions": ["push"], "scope": "app:*"})),
        ("appv1only", json!({"actions": ["push"], "scope": "app:v1"})),
        ("barerepo", json!({"actions": ["push"], "scope": "app"})),
        (
            "otherrepo",
            json!({"actions": ["push"], "scope": "other:*"}),
        ),
        (
            "disabled",
            json!({"actions": ["push"], "status": "disabled"}),
        ),
        (
            "deletesv1",
            json!({"actions": ["delete"], "scope": "app:v1"}),
        ),
    ];
    let receivers: Vec<Receiver> = hooks.iter().map(|_| Receiver::start()).collect();
    for ((name, fields), rx) in hooks.iter().zip(&receivers) {
        let mut body = fields.clone();
        body["serviceUri"] = json!(rx.url);
        assert_eq!(create(&reg, name, body).status, 201);
    }
    let (_, v1) = push_image(&reg.url(), "app", "v1", 1);
    push_image(&reg.url(), "app", "latest", 2);
    let (_, v2) = push_image(&reg.url(), "app", "v2", 3);
    http(
        "PUT",
        &format!("{}/v2/app/manifests/v1b", reg.url()),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &http(
            "GET",
            &format!("{}/v2/app/manifests/v1", reg.url()),
            &[],
            &[],
        )
        .body,
    );
    for d in [
        v1.header("docker-content-digest").unwrap(),
        v2.header("docker-content-digest").unwrap(),
    ] {
        assert_eq!(
            http(
                "DELETE",
                &format!("{}/v2/app/manifests/{d}", reg.url()),
                &[],
                &[]
            )
            .status,
            202
        );
    }
    // A sentinel after the deletes: events are dispatched in log order, so
    // once the catch-all hook has it, every earlier event was dispatched.
    push_image(&reg.url(), "app", "sentinel", 4);
    let tags = |rx: &Receiver, n: usize| {
        (0..n)
            .map(|_| {
                rx.next().json()["target"]["tag"]
                    .as_str()
                    .unwrap_or("-")
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        tags(&receivers[0], 5),
        ["v1", "latest", "v2", "v1b", "sentinel"]
    );
    assert_eq!(
        tags(&receivers[1], 5),
        ["v1", "latest", "v2", "v1b", "sentinel"]
    );
    assert_eq!(tags(&receivers[2], 1), ["v1"]);
    assert_eq!(tags(&receivers[3], 1), ["latest"]);
    // The delete of v1's manifest (tags v1 and v1b) reaches deletesv1; the
    // delete of v2's manifest reaches no one.
    let deleted = receivers[6].next().json();
    assert_eq!(deleted["action"], "delete");
    assert_eq!(
        deleted["target"]["digest"].as_str(),
        v1.header("docker-content-digest")
    );
    // Once every queue has drained, nothing else arrived anywhere.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let pending = |name: &str| {
        api(&reg, "GET", &format!("/{name}"), None).json()["pending"]
            .as_u64()
            .unwrap()
    };
    while hooks.iter().any(|(name, _)| pending(name) > 0) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (i, (name, _)) in hooks.iter().enumerate() {
        assert_eq!(pending(name), 0, "{name}");
        assert!(
            receivers[i].drain().is_empty(),
            "{name} got more than it should"
        );
    }
}
