//! The foundation's proof: real MLflow registry data, written by MLflow's own client, read back by Ferry.
use crate::harness::{BUCKET, Env};
use ferry::approval::ApprovalSource;
use ferry::approval::mlflow::MlflowRegistry;
use ferry::catalog::Catalog;

#[tokio::test(flavor = "multi_thread")]
async fn versions_registered_through_mlflow_are_read_back_with_their_artifacts_in_s3() {
    let env = Env::new();
    let registered = env.register("risk-score", "foundation-risk", 2, &[1], &[]);
    assert_eq!(registered.len(), 2);

    let catalog = Catalog::parse(
        std::path::Path::new("ferry.toml"),
        "[registry]\nsource = \"mlflow\"\n[models.risk-score]\nregistered_model = \"foundation-risk\"\n",
    )
    .unwrap();
    let registry = MlflowRegistry::new(env.stack.mlflow_url.as_deref().unwrap(), 100);
    let approvals = registry.read(&catalog.models["risk-score"]).await.unwrap();

    assert_eq!(approvals.approved.len(), 1, "only version 1 is approved");
    let v1 = &approvals.approved[0];
    assert_eq!(v1.version, "1");
    assert_eq!(v1.approval.approved_by, "qa@example.org");
    assert_eq!(v1.artifact_uri, registered[0].1);

    // The artifacts are in moto's S3, where MLflow's client put them.
    let (bucket, prefix) = ferry::aws::parse_s3_uri(&v1.artifact_uri).unwrap();
    assert_eq!(bucket, BUCKET);
    let s3 = crate::harness::s3().await;
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("{prefix}/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(|k| k[prefix.len() + 1..].to_string())
        .collect();
    for expected in [
        "MLmodel",
        "python_model.pkl",
        "requirements.txt",
        "code/demo_models.py",
    ] {
        assert!(
            keys.iter().any(|k| k == expected),
            "{expected} missing from {keys:?}"
        );
    }
}
