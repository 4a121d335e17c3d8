//! Custom Content-Type and Standard Webhooks signatures across rotations.

use super::*;

#[test]
fn custom_content_type_wins_and_signatures_verify_across_a_rotation() {
    let rx = Receiver::start();
    let reg = BerthProcess::start();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = json!({"serviceUri": rx.url, "actions": ["push"], "secret": secret,
        "customHeaders": {"Content-Type": "application/cloudevents+json"}});
    assert_eq!(create(&reg, "signed01", body).status, 201);
    push_image(&reg.url(), "s", "v1", 1);
    let got = rx.next();
    assert_eq!(
        got.header("content-type"),
        Some("application/cloudevents+json")
    );
    let verify = |got: &support::receiver::Received, key: &str, signature: &str| {
        let key = base64::engine::general_purpose::STANDARD
            .decode(key.trim_start_matches("whsec_"))
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        let (id, ts) = (
            got.header("webhook-id").unwrap(),
            got.header("webhook-timestamp").unwrap(),
        );
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(&got.body);
        signature
            == format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
            )
    };
    assert_eq!(got.header("webhook-id"), got.json()["id"].as_str());
    let ts: u64 = got.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ts.abs_diff(now) < 300);
    let sigs: Vec<&str> = got
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 1);
    assert!(verify(&got, secret, sigs[0]), "signature does not verify");

    let new = "whsec_c2Vjb25kIHNlY3JldCBmb3IgYmVydGg=";
    assert_eq!(
        api(&reg, "PATCH", "/signed01", Some(json!({"secret": new}))).status,
        200
    );
    push_image(&reg.url(), "s", "v2", 2);
    let got = rx.next();
    let sigs: Vec<&str> = got
        .header("webhook-signature")
        .unwrap()
        .split(' ')
        .collect();
    assert_eq!(sigs.len(), 2, "the rotated-out secret still signs");
    assert!(verify(&got, new, sigs[0]) && verify(&got, secret, sigs[1]));
    assert!(!verify(&got, secret, sigs[0]));

    // Without a secret, nothing of the signature scheme is sent.
    let plain = Receiver::start();
    assert_eq!(
        create(
            &reg,
            "plain01",
            json!({"serviceUri": plain.url, "actions": ["push"]})
        )
        .status,
        201
    );
    push_image(&reg.url(), "s", "v3", 3);
    assert!(plain
        .next()
        .headers
        .iter()
        .all(|(k, _)| !k.starts_with("webhook-")));
}

#[test]
fn a_rotated_out_secret_stops_signing_when_its_grace_ends() {
    let rx = Receiver::start();
    let reg = BerthProcess::with_config("[delivery]\nsecret_rotation_grace = \"2s\"\n");
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = json!({"serviceUri": rx.url, "actions": ["push"], "secret": old});
    assert_eq!(create(&reg, "grace01", body).status, 201);
    let new = json!({"secret": "whsec_c2Vjb25kIHNlY3JldCBmb3IgYmVydGg="});
    assert_eq!(api(&reg, "PATCH", "/grace01", Some(new)).status, 200);
    let signatures = |tag: &str, seed: u64| {
        push_image(&reg.url(), "g", tag, seed);
        let got = rx.next();
        got.header("webhook-signature").unwrap().split(' ').count()
    };
    assert_eq!(signatures("v1", 1), 2, "within the grace both secrets sign");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(signatures("v2", 2), 1, "after it only the new one does");
}
