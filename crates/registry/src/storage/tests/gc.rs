use std::collections::HashSet;
use std::time::Duration;

use super::*;

async fn gc_deletes_old_unreferenced_blobs_and_keeps_the_rest(setup: Setup) {
    let s = setup.store().await;
    let (bytes, digest) = image(&s, "app", "kept", None).await;
    put(&s, "app", &bytes, &["v1"]).await.unwrap();
    let orphan = blob(&s, "app", b"nobody references me").await;
    let rooted = blob(&s, "app", b"an extension references me").await;
    let (gone, gone_digest) = image(&s, "app", "deleted", None).await;
    put(&s, "app", &gone, &[]).await.unwrap();
    s.delete_manifest(&repo("app"), &gone_digest, &request())
        .await
        .unwrap();
    let hour = Duration::from_secs(3600);
    let roots: HashSet<Digest> = [rooted.clone()].into();

    // Everything is younger than the grace period: nothing goes.
    let young = s.gc(false, hour, hour * 24, roots.clone()).await.unwrap();
    assert!(young.deleted_blobs.is_empty());
    assert_eq!(young.young_blobs, 3, "{young:?}");

    // Past it (a grace of nothing), the unreferenced go.
    let now = Duration::ZERO;
    let dry = s.gc(true, now, hour * 24, roots.clone()).await.unwrap();
    assert_eq!(
        dry.deleted_blobs.len(),
        3,
        "the orphan and the deleted image's two blobs"
    );
    assert!(
        s.blob_size(&repo("app"), &orphan).await.unwrap().is_some(),
        "a dry run deletes nothing"
    );
    let real = s.gc(false, now, hour * 24, roots).await.unwrap();
    assert_eq!(real.deleted_blobs, dry.deleted_blobs);
    assert!(real.freed_bytes > 0);
    assert_eq!(s.blob_size(&repo("app"), &orphan).await.unwrap(), None);
    assert!(s.blob_size(&repo("app"), &rooted).await.unwrap().is_some());
    // The kept image still pulls whole.
    let m = s
        .manifest(&repo("app"), &crate::types::Reference::Digest(digest))
        .await
        .unwrap();
    let manifest = Manifest::parse(&m.bytes, None).unwrap();
    for b in manifest.blobs {
        assert!(s.blob_size(&repo("app"), &b).await.unwrap().is_some());
    }
}

async fn gc_removes_expired_upload_sessions(setup: Setup) {
    let s = setup.store().await;
    let id = s.start_upload(&repo("app")).await.unwrap();
    let kept = s
        .gc(
            false,
            Duration::ZERO,
            Duration::from_secs(3600),
            HashSet::new(),
        )
        .await
        .unwrap();
    assert!(kept.expired_uploads.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = s
        .gc(false, Duration::ZERO, Duration::ZERO, HashSet::new())
        .await
        .unwrap();
    assert_eq!(report.expired_uploads, [id.to_string()]);
    assert!(matches!(
        s.upload_len(&repo("app"), &id).await,
        Err(crate::Error::UploadUnknown)
    ));
}

on_both_backends!(
    gc_deletes_old_unreferenced_blobs_and_keeps_the_rest,
    gc_removes_expired_upload_sessions
);
