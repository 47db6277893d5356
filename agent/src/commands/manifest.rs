//! `ferry manifest DIR|s3://bucket/prefix`: the artifact manifest and digest an approver records as
//! `ferry.artifact_sha256` before approving a version.
use std::path::Path;

use anyhow::{Result, anyhow};

use super::print_json;
use crate::cli::{GlobalArgs, ManifestArgs, OutputFormat};
use crate::manifest::{ArtifactManifest, scan_dir};

pub async fn run(g: &GlobalArgs, args: &ManifestArgs) -> Result<u8> {
    let manifest = if args.location.starts_with("s3://") {
        crate::sync::remote_manifest(&args.location).await?
    } else {
        let dir = Path::new(&args.location);
        if !dir.is_dir() {
            return Err(anyhow!(
                "{}: is not a folder (give a model folder or s3://bucket/prefix)",
                dir.display()
            ));
        }
        let files = scan_dir(dir).map_err(|e| anyhow!(e))?;
        ArtifactManifest::new("", "", &args.location, files)
    };
    match g.output {
        OutputFormat::Json => print_json(&manifest)?,
        OutputFormat::Text => print!("{}", manifest.to_text()),
    }
    Ok(0)
}
