use super::*;
use crate::types::Reference;
use crate::Error;

async fn a_push_stores_tags_events_and_referrers_and_a_delete_undoes_it(setup: Setup) {
    let s = setup.store().await;
    let (bytes, digest) = image(&s, "app", "a", None).await;
    assert_eq!(
        put(&s, "app", &bytes, &["v1", "latest"]).await.unwrap(),
        digest
    );
    let by_tag = s
        .manifest(&repo("app"), &Reference::Tag(Tag::parse("v1").unwrap()))
        .await
        .unwrap();
    assert_eq!(
        (by_tag.digest, by_tag.bytes),
        (digest.clone(), bytes.clone())
    );
    assert_eq!(
        s.tags(&repo("app"), None, 10).await.unwrap().unwrap(),
        ["latest", "v1"]
    );
    assert_eq!(
        s.tags(&repo("app"), Some("latest"), 10)
            .await
            .unwrap()
            .unwrap(),
        ["v1"]
    );
    assert_eq!(s.tags(&repo("nope"), None, 10).await.unwrap(), None);
    assert_eq!(s.repositories(None, 10).await.unwrap(), ["app"]);

    // A referrer of the image.
    let (sbom, sbom_digest) = image(&s, "app", "sbom", Some(&digest)).await;
    put(&s, "app", &sbom, &[]).await.unwrap();
    let refs = s.referrers(&repo("app"), &digest).await.unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["digest"], sbom_digest.to_string());
    assert_eq!(refs[0]["artifactType"], "application/vnd.example.sbom");

    s.delete_manifest(&repo("app"), &sbom_digest, &request())
        .await
        .unwrap();
    assert!(s.referrers(&repo("app"), &digest).await.unwrap().is_empty());
    s.delete_manifest(&repo("app"), &digest, &request())
        .await
        .unwrap();
    assert!(s
        .tags(&repo("app"), None, 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    let gone = s
        .manifest(&repo("app"), &Reference::Digest(digest.clone()))
        .await;
    assert!(matches!(gone, Err(Error::ManifestUnknown)));
    assert!(matches!(
        s.delete_manifest(&repo("app"), &digest, &request()).await,
        Err(Error::ManifestUnknown)
    ));
    let app = |tag: Option<&str>| (Action::Push, "app".to_owned(), tag.map(str::to_owned));
    assert_eq!(
        events(&s).await,
        [
            app(Some("v1")),
            app(Some("latest")),
            app(None),
            (Action::Delete, "app".into(), None),
            (Action::Delete, "app".into(), None),
        ]
    );
    // The delete remembers the tags the manifest had, for scope matching.
    let log = s.meta().log.read(0, 10).await.unwrap();
    assert_eq!(log[4].1.tags, ["latest", "v1"]);
}

async fn moving_a_tag_untags_the_old_manifest_and_a_tag_delete_keeps_it(setup: Setup) {
    let s = setup.store().await;
    let (a, a_digest) = image(&s, "app", "a", None).await;
    let (b, _) = image(&s, "app", "b", None).await;
    put(&s, "app", &a, &["v1", "stable"]).await.unwrap();
    put(&s, "app", &b, &["v1"]).await.unwrap();
    // Deleting `a` now removes only the tag it still has.
    s.delete_tag(&repo("app"), &Tag::parse("stable").unwrap())
        .await
        .unwrap();
    assert!(matches!(
        s.delete_tag(&repo("app"), &Tag::parse("stable").unwrap())
            .await,
        Err(Error::ManifestUnknown)
    ));
    assert!(s
        .manifest(&repo("app"), &Reference::Digest(a_digest.clone()))
        .await
        .is_ok());
    s.delete_manifest(&repo("app"), &a_digest, &request())
        .await
        .unwrap();
    assert_eq!(
        s.tags(&repo("app"), None, 10).await.unwrap().unwrap(),
        ["v1"]
    );
    let log = s.meta().log.read(0, 10).await.unwrap();
    let delete = log.last().unwrap();
    assert_eq!(
        (delete.1.event.action, delete.1.tags.len()),
        (Action::Delete, 0)
    );
}

async fn references_must_be_in_the_repository(setup: Setup) {
    let s = setup.store().await;
    let (bytes, _) = image(&s, "app", "a", None).await;
    // The blobs are in `app`, not in `other`.
    let err = put(&s, "other", &bytes, &["v1"]).await.unwrap_err();
    assert!(
        matches!(err, Error::ManifestBlobUnknown(ref missing) if missing.len() == 2),
        "{err}"
    );
    let child = Digest::of(Algorithm::Sha256, b"never pushed");
    let err = put(&s, "app", &index(&[&child]), &["multi"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ManifestBlobUnknown(_)));
    assert!(events(&s).await.is_empty(), "a refused push raises nothing");
    let (_, digest) = (bytes.clone(), put(&s, "app", &bytes, &[]).await.unwrap());
    put(&s, "app", &index(&[&digest]), &["multi"])
        .await
        .unwrap();
}

async fn deleting_a_repository_deletes_every_manifest_with_an_event_each(setup: Setup) {
    let s = setup.store().await;
    for seed in ["a", "b", "c"] {
        let (bytes, _) = image(&s, "team/app", seed, None).await;
        put(&s, "team/app", &bytes, &[seed]).await.unwrap();
    }
    assert_eq!(
        s.delete_repository(&repo("team/app"), &request())
            .await
            .unwrap(),
        3
    );
    assert!(!s.repo_exists(&repo("team/app")).await.unwrap());
    let deletes = events(&s)
        .await
        .into_iter()
        .filter(|e| e.0 == Action::Delete)
        .count();
    assert_eq!(deletes, 3);
    assert!(matches!(
        s.delete_repository(&repo("team/app"), &request()).await,
        Err(Error::NameUnknown)
    ));
}

on_both_backends!(
    a_push_stores_tags_events_and_referrers_and_a_delete_undoes_it,
    moving_a_tag_untags_the_old_manifest_and_a_tag_delete_keeps_it,
    references_must_be_in_the_repository,
    deleting_a_repository_deletes_every_manifest_with_an_event_each
);
