use std::time::Duration;

use super::*;

fn kinds(report: &crate::storage::fsck::Report) -> Vec<&'static str> {
    let mut kinds: Vec<_> = report.problems.iter().map(|p| p.kind).collect();
    kinds.sort();
    kinds
}

async fn fsck_is_clean_on_a_healthy_store_and_names_each_kind_of_damage(setup: Setup) {
    let s = setup.store().await;
    let (bytes, _) = image(&s, "app", "a", None).await;
    put(&s, "app", &bytes, &["v1"]).await.unwrap();
    let (other, other_digest) = image(&s, "app", "b", None).await;
    put(&s, "app", &other, &["v2"]).await.unwrap();
    let day = Duration::from_secs(86400);
    let report = s.fsck(false, day).await.unwrap();
    assert_eq!((report.manifests, report.tags, report.blobs), (2, 2, 4));
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    // A corrupt blob file, a dangling tag, a tag list that forgot a tag.
    let config = Manifest::parse(&other, None).unwrap().blobs[0].clone();
    s.blobs.overwrite(&config, b"rot").await;
    let m = s.meta();
    let ghost = format!("sha256:{}", "e".repeat(64));
    m.tags
        .insert(&crate::kv::key(&[b"app", b"ghost"]), ghost.as_bytes())
        .await
        .unwrap();
    let key = super::super::meta::key(&repo("app"), other_digest.as_str());
    let mut record: super::super::meta::ManifestMeta =
        m.manifest_meta.get_json(&key).await.unwrap().unwrap();
    record.tags.clear();
    m.manifest_meta
        .insert(&key, &serde_json::to_vec(&record).unwrap())
        .await
        .unwrap();
    let report = s.fsck(false, day).await.unwrap();
    assert_eq!(
        kinds(&report),
        ["corrupt_blob", "dangling_tag", "tag_index_mismatch"]
    );
    assert_eq!(report.unrepaired(), 3);

    let repaired = s.fsck(true, day).await.unwrap();
    assert_eq!(repaired.unrepaired(), 0, "{:?}", repaired.problems);
    // The corrupt blob is gone (clients push it again); what remains names it.
    let report = s.fsck(false, day).await.unwrap();
    assert_eq!(kinds(&report), ["missing_blob"]);
    assert_eq!(
        s.tags(&repo("app"), None, 10).await.unwrap().unwrap(),
        ["v1", "v2"]
    );
    blob(&s, "app", b"config b").await;
    assert!(s.fsck(false, day).await.unwrap().problems.is_empty());
}

on_both_backends!(fsck_is_clean_on_a_healthy_store_and_names_each_kind_of_damage);
