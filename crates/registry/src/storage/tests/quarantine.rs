use super::*;
use crate::storage::quarantine::Verdict;
use crate::types::Reference;
use crate::Error;

async fn held_manifests_are_hidden_until_passed_and_failed_ones_stay_hidden(setup: Setup) {
    let s = setup.store_with(true, 100).await;
    let (a, a_digest) = image(&s, "app", "a", None).await;
    let (b, b_digest) = image(&s, "app", "b", None).await;
    put(&s, "app", &a, &["v1"]).await.unwrap();
    put(&s, "app", &b, &["v2"]).await.unwrap();
    let pull = |d: &Digest| Reference::Digest(d.clone());
    assert!(matches!(
        s.manifest(&repo("app"), &pull(&a_digest)).await,
        Err(Error::ManifestUnknown)
    ));
    assert!(s
        .tags(&repo("app"), None, 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert_eq!(s.held_manifests().await.unwrap().len(), 2);
    // The scanner reads a held manifest.
    assert_eq!(
        s.held_manifest(&repo("app"), &a_digest)
            .await
            .unwrap()
            .bytes,
        a
    );

    s.judge(&repo("app"), &a_digest, Verdict::Passed, None, &request())
        .await
        .unwrap();
    s.judge(
        &repo("app"),
        &b_digest,
        Verdict::Failed,
        Some("CVE".into()),
        &request(),
    )
    .await
    .unwrap();
    assert!(s.manifest(&repo("app"), &pull(&a_digest)).await.is_ok());
    assert!(s.manifest(&repo("app"), &pull(&b_digest)).await.is_err());
    assert_eq!(
        s.tags(&repo("app"), None, 10).await.unwrap().unwrap(),
        ["v1"]
    );
    let held = s.held_manifests().await.unwrap();
    assert_eq!(
        (held.len(), &held[0]["state"], &held[0]["details"]),
        (1, &serde_json::json!("Failed"), &serde_json::json!("CVE"))
    );
    // Passing again changes nothing; failing a released one is refused.
    s.judge(&repo("app"), &a_digest, Verdict::Passed, None, &request())
        .await
        .unwrap();
    assert!(matches!(
        s.judge(&repo("app"), &a_digest, Verdict::Failed, None, &request())
            .await,
        Err(Error::ManifestInvalid(_))
    ));
    let app = |action, tag: &str| (action, "app".to_owned(), Some(tag.to_owned()));
    assert_eq!(
        events(&s).await,
        [
            app(Action::Quarantine, "v1"),
            app(Action::Quarantine, "v2"),
            app(Action::Push, "v1"),
        ]
    );
}

on_both_backends!(held_manifests_are_hidden_until_passed_and_failed_ones_stay_hidden);
