use super::*;
use crate::types::ContentRange;
use crate::Error;

async fn chunks_append_in_order_and_the_digest_is_verified(setup: Setup) {
    let s = setup.store().await;
    let r = repo("app");
    let id = s.start_upload(&r).await.unwrap();
    assert_eq!(
        s.append_upload(&r, &id, None, body(b"hello "))
            .await
            .unwrap(),
        6
    );
    // Out of order: refused with the current offset, nothing appended.
    let skip = ContentRange { start: 10, end: 12 };
    assert!(matches!(
        s.append_upload(&r, &id, Some(skip), body(b"xyz")).await,
        Err(Error::RangeNotSatisfiable { offset: 6 })
    ));
    // A body longer than its range: refused, and cut off again.
    let next = ContentRange { start: 6, end: 8 };
    assert!(matches!(
        s.append_upload(&r, &id, Some(next), body(b"world")).await,
        Err(Error::SizeInvalid(_))
    ));
    assert_eq!(s.upload_len(&r, &id).await.unwrap(), 6);
    let next = ContentRange { start: 6, end: 8 };
    assert_eq!(
        s.append_upload(&r, &id, Some(next), body(b"wor"))
            .await
            .unwrap(),
        9
    );
    let digest = Digest::of(Algorithm::Sha256, b"hello world");
    assert!(
        matches!(
            s.upload_len(&repo("other"), &id).await,
            Err(Error::UploadUnknown)
        ),
        "a session belongs to its repository"
    );
    assert_eq!(
        s.finish_upload(&r, &id, &digest, None, body(b"ld"))
            .await
            .unwrap(),
        11
    );
    assert_eq!(s.blob_size(&r, &digest).await.unwrap(), Some(11));
    assert!(matches!(
        s.upload_len(&r, &id).await,
        Err(Error::UploadUnknown)
    ));
}

async fn a_wrong_digest_stores_nothing_and_ends_the_session(setup: Setup) {
    let s = setup.store().await;
    let r = repo("app");
    let id = s.start_upload(&r).await.unwrap();
    let claimed = Digest::of(Algorithm::Sha256, b"something else");
    let err = s
        .finish_upload(&r, &id, &claimed, None, body(b"content"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }));
    assert_eq!(s.blob_size(&r, &claimed).await.unwrap(), None);
    assert!(matches!(
        s.upload_len(&r, &id).await,
        Err(Error::UploadUnknown)
    ));
    assert!(
        s.blobs.staged().await.unwrap().is_empty(),
        "no staged bytes left"
    );
}

async fn open_sessions_are_bounded_and_cancelling_frees_a_slot(setup: Setup) {
    let s = setup.store_with(false, 2).await;
    let r = repo("app");
    let first = s.start_upload(&r).await.unwrap();
    s.start_upload(&r).await.unwrap();
    assert!(matches!(
        s.start_upload(&r).await,
        Err(Error::TooManyRequests(_))
    ));
    s.cancel_upload(&r, &first).await.unwrap();
    s.start_upload(&r).await.unwrap();
}

async fn a_session_survives_a_restart_and_resumes_where_it_stopped(setup: Setup) {
    let r = repo("app");
    let id = {
        let s = setup.store().await;
        let id = s.start_upload(&r).await.unwrap();
        s.append_upload(&r, &id, None, body(b"part one, "))
            .await
            .unwrap();
        id
    };
    let s = setup.store().await;
    assert_eq!(s.upload_len(&r, &id).await.unwrap(), 10);
    let digest = Digest::of(Algorithm::Sha256, b"part one, part two");
    s.finish_upload(&r, &id, &digest, None, body(b"part two"))
        .await
        .unwrap();
    // A mount makes it available elsewhere without bytes.
    assert_eq!(
        s.mount_blob(&repo("copy"), &digest, Some(&r))
            .await
            .unwrap(),
        Some(18)
    );
    assert_eq!(
        s.mount_blob(&repo("none"), &digest, Some(&repo("x")))
            .await
            .unwrap(),
        None
    );
    s.delete_blob(&repo("copy"), &digest).await.unwrap();
    assert!(matches!(
        s.delete_blob(&repo("copy"), &digest).await,
        Err(Error::BlobUnknown)
    ));
}

on_both_backends!(
    chunks_append_in_order_and_the_digest_is_verified,
    a_wrong_digest_stores_nothing_and_ends_the_session,
    open_sessions_are_bounded_and_cancelling_frees_a_slot,
    a_session_survives_a_restart_and_resumes_where_it_stopped
);
