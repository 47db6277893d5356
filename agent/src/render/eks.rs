//! Rendering for the EKS service: per model, the Kubernetes manifests of templates/k8s/ with the model's served set,
//! through the same strict Handlebars engine as the Lambda template (templates/k8s/README.md is the context's
//! contract). Pure like the Lambda rendering: the approvals, the catalog and the platform come in as values.
use std::path::Path;

use serde::Serialize;

use super::{RenderError, Templates};
use crate::approval::{Approval, ApprovedVersion, ModelApprovals};
use crate::catalog::{Catalog, CatalogError, Model};
use crate::platform::{self, Platform};
use crate::spec::ArtifactRef;

/// The templates that ship with Ferry, in the order they are applied: (file stem, text). The position names the
/// rendered file (`02-deployment.yaml`), so a file keeps its name when an optional one before it renders nothing.
pub const TEMPLATES: [(&str, &str); 4] = [
    (
        "service",
        include_str!("../../../templates/k8s/service.yaml.hbs"),
    ),
    (
        "deployment",
        include_str!("../../../templates/k8s/deployment.yaml.hbs"),
    ),
    ("hpa", include_str!("../../../templates/k8s/hpa.yaml.hbs")),
    ("pdb", include_str!("../../../templates/k8s/pdb.yaml.hbs")),
];

/// What the EKS rendering reads besides the approvals, with the files they came from (named in errors).
pub struct EksInputs<'a> {
    pub catalog: &'a Catalog,
    pub platform: &'a Platform,
    pub platform_path: &'a Path,
}

/// One rendered manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// The file name under `<out>/<model>/`: `<order>-<template>.yaml`, e.g. `02-deployment.yaml`.
    pub file: String,
    pub template: String,
    pub text: String,
}

/// What one model renders to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EksModel {
    pub model: String,
    /// The Kubernetes name of its objects (`eks.name`).
    pub name: String,
    pub namespace: String,
    /// The served set's versions, in version order; empty when no version is approved (then nothing is rendered).
    pub versions: Vec<String>,
    /// In apply order, without the templates that rendered only white space.
    pub manifests: Vec<Manifest>,
}

/// The values the templates see (templates/k8s/README.md).
#[derive(Debug, Serialize)]
struct EksContext<'a> {
    model: &'a Model,
    versions: Vec<ServedVersion<'a>>,
    eks: EksValues<'a>,
    platform: &'a Platform,
}

#[derive(Debug, Serialize)]
struct ServedVersion<'a> {
    version: &'a str,
    alias: String,
    model_path: String,
    approval: &'a Approval,
    artifact: ArtifactRef,
}

#[derive(Debug, Serialize)]
struct EksValues<'a> {
    name: String,
    #[serde(flatten)]
    settings: &'a crate::catalog::Eks,
}

/// The name a template is known by in errors: like the Lambda template's, `<builtin>/templates/k8s/<stem>.yaml.hbs`.
pub fn template_name(stem: &str) -> String {
    format!("<builtin>/templates/k8s/{stem}.yaml.hbs")
}

/// The platform's EKS service, or an error saying the stack has none.
pub fn eks_platform<'a>(
    platform: &'a Platform,
    platform_path: &Path,
) -> Result<&'a platform::Eks, RenderError> {
    platform.eks.as_ref().ok_or_else(|| RenderError::NoEks {
        path: platform_path.display().to_string(),
    })
}

/// Renders one model's manifests with its approved versions as the served set, in version order.
pub fn render_model(
    templates: &mut Templates,
    inputs: &EksInputs,
    model: &Model,
    approvals: &ModelApprovals,
) -> Result<EksModel, RenderError> {
    let eks_platform = eks_platform(inputs.platform, inputs.platform_path)?;
    let catalog_error = |field: String, reason: String| {
        RenderError::Catalog(CatalogError::Invalid {
            path: inputs.catalog.path.clone(),
            field,
            reason,
        })
    };
    let name = model
        .eks_name()
        .map_err(|reason| catalog_error(format!("models.{}", model.key), reason))?;
    for variable in model.environment.keys() {
        check_environment_name(variable).map_err(|reason| {
            catalog_error(
                format!("models.{}.environment.{variable}", model.key),
                reason,
            )
        })?;
    }
    let mut approved: Vec<&ApprovedVersion> = approvals.approved.iter().collect();
    approved.sort_by(|a, b| crate::approval::version_order(&a.version, &b.version));
    let mut rendered = EksModel {
        model: model.key.clone(),
        name: name.clone(),
        namespace: eks_platform.namespace.clone(),
        versions: approved.iter().map(|a| a.version.clone()).collect(),
        manifests: Vec::new(),
    };
    // The runtime's server refuses an empty served set: a model with nothing approved gets no Deployment.
    if approved.is_empty() {
        return Ok(rendered);
    }
    let context = EksContext {
        model,
        versions: approved
            .iter()
            .map(|a| served_version(a, &eks_platform.mount_path, &model.key))
            .collect(),
        eks: EksValues {
            name,
            settings: &model.eks,
        },
        platform: inputs.platform,
    };
    for (order, (stem, text)) in TEMPLATES.iter().enumerate() {
        let template = template_name(stem);
        templates.register(&template, || Ok(text.to_string()))?;
        let text = templates.render(&template, &context)?;
        if text.trim().is_empty() {
            continue;
        }
        rendered.manifests.push(Manifest {
            file: manifest_file(order, stem),
            template,
            text,
        });
    }
    Ok(rendered)
}

fn served_version<'a>(
    approved: &'a ApprovedVersion,
    mount_path: &str,
    model: &str,
) -> ServedVersion<'a> {
    let version = approved.version.as_str();
    ServedVersion {
        version,
        alias: crate::plan::version_alias(version),
        model_path: format!("{mount_path}/{model}/{version}"),
        approval: &approved.approval,
        artifact: ArtifactRef {
            source: approved.artifact_uri.clone(),
            expected_digest: approved.approval.artifact_sha256.clone(),
        },
    }
}

/// A container environment variable every Kubernetes version takes (`[-._a-zA-Z][-._a-zA-Z0-9]*`), and none that
/// the Deployment sets itself or that the runtime's server reads its served set from.
fn check_environment_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || "-._".contains(c))
        && chars.all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
    if !valid {
        return Err(
            "is not a Kubernetes environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)".into(),
        );
    }
    if name == "HOME" || name.starts_with("FERRY_") {
        return Err(
            "is set by Ferry on the EKS service (HOME and every FERRY_* variable: the served set and how it is loaded are the rendered Deployment's alone)".into()
        );
    }
    Ok(())
}

/// The file names the templates render to, in apply order.
pub fn manifest_files() -> impl Iterator<Item = String> {
    TEMPLATES
        .iter()
        .enumerate()
        .map(|(order, (stem, _))| manifest_file(order, stem))
}

fn manifest_file(order: usize, stem: &str) -> String {
    format!("{:02}-{stem}.yaml", order + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::ApprovalSource;
    use crate::approval::manifest::ReleaseManifest;

    const CATALOG: &str = include_str!("../../../tests/fixtures/k8s-render/ferry.toml");
    const PLATFORM: &str = include_str!("../../../tests/fixtures/k8s-render/platform.json");
    const RELEASES: &str = include_str!("../../../tests/fixtures/k8s-render/releases.toml");
    const CATALOG_PATH: &str = "fixture/ferry.toml";

    struct Fixture {
        catalog: Catalog,
        platform: Platform,
        approvals: ModelApprovals,
    }

    /// The render fixture of tests/fixtures/k8s-render/, with `edit` applied to the catalog's and the release
    /// manifest's text.
    fn fixture(edit: impl Fn(&str) -> String) -> Fixture {
        let catalog = Catalog::parse(Path::new(CATALOG_PATH), &edit(CATALOG)).unwrap();
        let platform = Platform::parse(Path::new("platform.json"), PLATFORM).unwrap();
        let manifest = ReleaseManifest::parse(Path::new("releases.toml"), &edit(RELEASES)).unwrap();
        let model = catalog.models.values().next().unwrap();
        let approvals = futures::executor::block_on(manifest.read(model)).unwrap();
        Fixture {
            catalog,
            platform,
            approvals,
        }
    }

    impl Fixture {
        fn render_with(&self, templates: &mut Templates) -> Result<EksModel, RenderError> {
            let inputs = EksInputs {
                catalog: &self.catalog,
                platform: &self.platform,
                platform_path: Path::new("platform.json"),
            };
            let model = self.catalog.models.values().next().unwrap();
            render_model(templates, &inputs, model, &self.approvals)
        }

        fn render(&self) -> Result<EksModel, RenderError> {
            self.render_with(&mut Templates::new())
        }

        fn manifest(&self, file: &str) -> String {
            let out = self.render().unwrap();
            out.manifests
                .into_iter()
                .find(|m| m.file == file)
                .unwrap_or_else(|| panic!("no {file}"))
                .text
        }
    }

    fn unchanged(text: &str) -> String {
        text.to_string()
    }

    #[test]
    fn a_model_renders_its_manifests_in_apply_order_serving_its_approved_versions() {
        let out = fixture(unchanged).render().unwrap();
        assert_eq!(
            (
                out.model.as_str(),
                out.name.as_str(),
                out.namespace.as_str()
            ),
            ("risk-score", "ferry-risk-score", "ferry")
        );
        assert_eq!(out.versions, ["1", "2", "4"], "3's approval was withdrawn");
        let files: Vec<&str> = out.manifests.iter().map(|m| m.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "01-service.yaml",
                "02-deployment.yaml",
                "03-hpa.yaml",
                "04-pdb.yaml"
            ]
        );
        assert_eq!(
            out.manifests[1].template,
            "<builtin>/templates/k8s/deployment.yaml.hbs"
        );
        let deployment = &out.manifests[1].text;
        assert!(deployment.contains(
            r#"{"model": "risk-score", "version": "4", "path": "/mnt/models/risk-score/4", "artifact_digest": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"}"#
        ), "{deployment}");
        assert!(deployment.contains(
            r#""version": "1", "path": "/mnt/models/risk-score/1", "artifact_digest": null}"#
        ));
        assert!(!deployment.contains(r#""version": "3""#));
        assert!(deployment.contains("ferry.dev/served-versions: \"1,2,4\""));
        // Same inputs, the same bytes.
        assert_eq!(fixture(unchanged).render().unwrap(), out);
    }

    #[test]
    fn the_served_set_is_in_version_order_whatever_the_sources_order() {
        let mut f = fixture(unchanged);
        f.approvals.approved.reverse();
        assert_eq!(f.render().unwrap().versions, ["1", "2", "4"]);
    }

    #[test]
    fn the_served_set_uses_the_eks_mount_path_not_the_lambda_one() {
        let mut f = fixture(unchanged);
        f.platform.eks.as_mut().unwrap().mount_path = "/mnt/eks-models".into();
        let deployment = f.manifest("02-deployment.yaml");
        assert!(deployment.contains(r#""path": "/mnt/eks-models/risk-score/2""#));
        assert!(deployment.contains("mountPath: \"/mnt/eks-models\""));
    }

    #[test]
    fn the_optional_manifests_render_nothing_and_are_left_out() {
        let f = fixture(|c| {
            c.replace(
                "autoscaling = { min_replicas = 2, max_replicas = 6, target_cpu_percent = 70 }\n",
                "",
            )
            .replace("disruption_budget = { min_available = 1 }\n", "")
        });
        let out = f.render().unwrap();
        let files: Vec<&str> = out.manifests.iter().map(|m| m.file.as_str()).collect();
        assert_eq!(files, ["01-service.yaml", "02-deployment.yaml"]);
        assert!(out.manifests[1].text.contains("\n  replicas: 2\n"));
    }

    #[test]
    fn a_model_with_no_approved_version_renders_nothing() {
        let mut f = fixture(unchanged);
        f.approvals.approved.clear();
        let out = f.render().unwrap();
        assert!(out.versions.is_empty() && out.manifests.is_empty());
    }

    /// Values reach the manifests JSON-escaped inside YAML double quotes: quotes, backslashes, newlines, `#` and
    /// braces cannot end the string or start a comment or a template tag, and the characters YAML reads as line
    /// breaks or refuses (NEL, DEL, U+2028, BOM) are escaped too, so YAML reads the value back as it was.
    #[test]
    fn hostile_environment_values_arrive_escaped_as_documented() {
        let f = fixture(|c| {
            c.replace(
                r#"environment = { LOG_LEVEL = "info" }"#,
                r#"environment = { NOTE = "a \"quoted\" value: with # and \\ and\nnewline\tand {{braces}} \u0085\u007f\u2028\ufeff zoë 李" }"#,
            )
        });
        let deployment = f.manifest("02-deployment.yaml");
        let line = deployment
            .lines()
            .find(|l| l.trim_start().starts_with("value: \"a "))
            .unwrap();
        assert_eq!(
            line.trim_start(),
            r#"value: "a \"quoted\" value: with # and \\ and\nnewline\tand {{braces}} \u0085\u007f\u2028\ufeff zoë 李""#
        );
        // As JSON (the escape is JSON's), the value is the catalog's.
        let value: String =
            serde_json::from_str(line.trim_start().trim_start_matches("value: ")).unwrap();
        assert_eq!(value, f.catalog.models["risk-score"].environment["NOTE"]);
    }

    #[test]
    fn a_model_key_that_cannot_name_kubernetes_objects_is_refused_naming_it() {
        let key = "r".repeat(58);
        let f = fixture(|c| c.replace("risk-score", &key));
        let inputs = EksInputs {
            catalog: &f.catalog,
            platform: &f.platform,
            platform_path: Path::new("platform.json"),
        };
        let err = render_model(
            &mut Templates::new(),
            &inputs,
            &f.catalog.models[&key],
            &f.approvals,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            format!(
                "fixture/ferry.toml: models.{key} cannot name its Kubernetes objects: \"ferry-{key}\" is 64 characters, and a Kubernetes name (an RFC 1123 label) has at most 63; use a model key of at most 57 characters"
            )
        );
    }

    #[test]
    fn environment_variables_ferry_sets_or_kubernetes_refuses_are_named() {
        for (name, expected) in [
            ("FERRY_SERVED_SET", "is set by Ferry on the EKS service"),
            ("FERRY_MODEL_PATH", "is set by Ferry on the EKS service"),
            ("HOME", "is set by Ferry on the EKS service"),
            ("\"A B\"", "is not a Kubernetes environment variable name"),
            ("\"1X\"", "is not a Kubernetes environment variable name"),
            ("\"NOTÉ\"", "is not a Kubernetes environment variable name"),
        ] {
            let f = fixture(|c| {
                c.replace(
                    r#"environment = { LOG_LEVEL = "info" }"#,
                    &format!(r#"environment = {{ {name} = "x" }}"#),
                )
            });
            let err = f.render().unwrap_err().to_string();
            let name = name.trim_matches('"');
            assert!(
                err.starts_with(&format!(
                    "fixture/ferry.toml: models.risk-score.environment.{name} {expected}"
                )),
                "{name}: {err}"
            );
        }
        // Kubernetes takes dots and dashes in a name, which Lambda would not.
        let f = fixture(|c| {
            c.replace(
                r#"environment = { LOG_LEVEL = "info" }"#,
                r#"environment = { "app.log-level" = "x", _X = "y" }"#,
            )
        });
        assert!(f.render().is_ok());
    }

    #[test]
    fn a_platform_without_an_eks_service_is_named() {
        let mut f = fixture(unchanged);
        f.platform.eks = None;
        let err = f.render().unwrap_err().to_string();
        assert!(
            err.starts_with(
                "platform.json: has no `eks` (modules/eks-service's `ferry_platform` output"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_missing_variable_names_the_template_its_line_and_the_variable() {
        let f = fixture(unchanged);
        let (_, deployment) = TEMPLATES[1];
        let broken = deployment.replace("platform.eks.volume_claim", "platform.eks.volume_clam");
        let line = broken
            .lines()
            .position(|l| l.contains("volume_clam"))
            .unwrap()
            + 1;
        let mut templates = Templates::new();
        let name = template_name("deployment");
        templates.register(&name, || Ok(broken.clone())).unwrap();
        let err = f.render_with(&mut templates).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "<builtin>/templates/k8s/deployment.yaml.hbs:{line}: `{{{{platform.eks.volume_clam}}}}` is not in the template context (did you mean `platform.eks.volume_claim`?)"
            )
        );
    }

    /// templates/k8s/README.md is the context's contract: every key the templates see is in its table.
    #[test]
    fn every_context_key_is_documented_in_the_templates_readme() {
        let readme = include_str!("../../../templates/k8s/README.md");
        let f = fixture(unchanged);
        let model = &f.catalog.models["risk-score"];
        let context = EksContext {
            model,
            versions: f
                .approvals
                .approved
                .iter()
                .map(|a| served_version(a, "/mnt/models", &model.key))
                .collect(),
            eks: EksValues {
                name: "ferry-risk-score".into(),
                settings: &model.eks,
            },
            platform: &f.platform,
        };
        let value = serde_json::to_value(&context).unwrap();
        let keys = |v: &serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let mut missing = Vec::new();
        for (prefix, object) in [
            ("eks.", &value["eks"]),
            ("platform.eks.", &value["platform"]["eks"]),
            ("versions[].", &value["versions"][0]),
        ] {
            for key in keys(object) {
                if !readme.contains(&format!("`{prefix}{key}`")) {
                    missing.push(format!("{prefix}{key}"));
                }
            }
        }
        let model_row = readme
            .lines()
            .find(|l| l.starts_with("| `model.*`"))
            .unwrap();
        for key in keys(&value["model"]) {
            if !model_row.contains(&format!("`{key}`")) {
                missing.push(format!("model.{key}"));
            }
        }
        let mut top = keys(&value);
        top.sort();
        assert_eq!(top, ["eks", "model", "platform", "versions"]);
        assert!(
            missing.is_empty(),
            "templates/k8s/README.md does not document {missing:?}"
        );
    }
}
