//! The platform's model storage as AWS reports it. `ferry verify` checks that the file system is encrypted at rest,
//! that both access points exist on it, and that they share one root directory: what the sync function writes
//! through its read-write access point is exactly what the model functions read through the read-only one.
use serde::Serialize;

use crate::aws::describe_sdk_error;
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StorageFinding {
    pub subject: String,
    pub ok: bool,
    pub detail: String,
}

/// `arn:aws:elasticfilesystem:<region>:<account>:access-point/fsap-…` → `fsap-…`.
pub fn access_point_id(arn: &str) -> Option<&str> {
    arn.rsplit_once(":access-point/")
        .map(|(_, id)| id)
        .filter(|id| !id.is_empty())
}

struct AccessPoint {
    file_system_id: String,
    root: String,
    uid: Option<i64>,
}

async fn describe_access_point(
    efs: &aws_sdk_efs::Client,
    arn: &str,
) -> Result<AccessPoint, String> {
    let id = access_point_id(arn).ok_or_else(|| format!("{arn:?} is not an access point ARN"))?;
    let answer = efs
        .describe_access_points()
        .access_point_id(id)
        .send()
        .await
        .map_err(|e| format!("DescribeAccessPoints {id}: {}", describe_sdk_error(&e)))?;
    let ap = answer
        .access_points()
        .first()
        .ok_or_else(|| format!("access point {id} does not exist"))?;
    Ok(AccessPoint {
        file_system_id: ap.file_system_id().unwrap_or_default().to_string(),
        root: ap
            .root_directory()
            .and_then(|r| r.path())
            .unwrap_or("/")
            .to_string(),
        uid: ap.posix_user().map(|u| u.uid()),
    })
}

pub async fn check_model_storage(
    efs: &aws_sdk_efs::Client,
    platform: &Platform,
) -> Vec<StorageFinding> {
    let fs_id = platform.efs.file_system_id.as_str();
    let finding = |subject: &str, result: Result<String, String>| match result {
        Ok(detail) => StorageFinding {
            subject: subject.into(),
            ok: true,
            detail,
        },
        Err(detail) => StorageFinding {
            subject: subject.into(),
            ok: false,
            detail,
        },
    };
    let mut out = Vec::new();
    let fs = efs
        .describe_file_systems()
        .file_system_id(fs_id)
        .send()
        .await;
    out.push(finding(
        "efs",
        match fs {
            Err(e) => Err(format!(
                "DescribeFileSystems {fs_id}: {}",
                describe_sdk_error(&e)
            )),
            Ok(answer) => match answer.file_systems().first() {
                None => Err(format!("file system {fs_id} does not exist")),
                Some(f) if f.encrypted() != Some(true) => {
                    Err(format!("file system {fs_id} is not encrypted at rest"))
                }
                Some(_) => Ok(format!(
                    "file system {fs_id} exists and is encrypted at rest"
                )),
            },
        },
    ));
    let inference = describe_access_point(efs, &platform.efs.inference_access_point_arn).await;
    let sync = describe_access_point(efs, &platform.efs.sync_access_point_arn).await;
    for (subject, ap) in [
        ("efs inference access point", &inference),
        ("efs sync access point", &sync),
    ] {
        out.push(finding(
            subject,
            match ap {
                Err(e) => Err(e.clone()),
                Ok(ap) if ap.file_system_id != fs_id => Err(format!(
                    "belongs to file system {}, not the platform's {fs_id}",
                    ap.file_system_id
                )),
                Ok(ap) if ap.root == "/" => {
                    Err("is rooted at the file system's top: give it its own root directory".into())
                }
                Ok(ap) => Ok(format!(
                    "root {}, POSIX uid {}",
                    ap.root,
                    ap.uid
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "(client's)".into())
                )),
            },
        ));
    }
    if let (Ok(i), Ok(s)) = (&inference, &sync)
        && i.root != s.root
    {
        out.push(finding(
            "efs access points",
            Err(format!(
                "the sync function writes under {} but the model functions read {}",
                s.root, i.root
            )),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_point_ids_come_from_their_arn() {
        assert_eq!(
            access_point_id(
                "arn:aws:elasticfilesystem:eu-west-1:111122223333:access-point/fsap-0abc"
            ),
            Some("fsap-0abc")
        );
        assert_eq!(access_point_id("fsap-0abc"), None);
    }
}
