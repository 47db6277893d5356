//! The Python a model version was saved with, against the Python its function runs. A model whose class was
//! defined in a notebook or a script is cloudpickled by value: its code is bytecode of the interpreter that saved
//! it, and another CPython minor loads it and then crashes on the first prediction (SIGSEGV; `Runtime.ExitError`
//! on Lambda). So a version saved on another minor than its function's runtime is refused, before anything is
//! changed; a patch release is no difference. Pure: reads text that the edges fetched (`MLmodel`,
//! `python_env.yaml` and `requirements.txt` of a version) and returns values.
use std::collections::BTreeMap;

use serde::Serialize;

/// The files of a version's artifacts that say what it was saved with.
pub const MLMODEL: &str = "MLmodel";
pub const PYTHON_ENV: &str = "python_env.yaml";
pub const REQUIREMENTS: &str = "requirements.txt";

/// The packages whose versions are compared with the runtime layer's, by normalised name. `mlflow-skinny` is
/// compared as `mlflow` (the layer ships the skinny distribution; a model saved with the full one pins `mlflow`).
pub const COMPARED_PACKAGES: [&str; 4] = ["mlflow", "cloudpickle", "numpy", "pandas"];

/// What a version's artifacts say about the environment it was saved in.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SavedEnv {
    /// The version has an `MLmodel` file.
    pub has_mlmodel: bool,
    /// The Python it was saved with: `flavors.python_function.python_version` of `MLmodel`, else `python` of
    /// `python_env.yaml`, as written (`3.11.7`).
    pub python: Option<String>,
    /// The exact pins (`name==version`) of its `requirements.txt`, by normalised name; `None` when it was not read
    /// or there is none.
    pub pins: Option<BTreeMap<String, String>>,
}

impl SavedEnv {
    /// From the text of the three files, each `None` when the version has no such file (or it was not read).
    pub fn from_files(
        mlmodel: Option<&str>,
        python_env: Option<&str>,
        requirements: Option<&str>,
    ) -> SavedEnv {
        SavedEnv {
            has_mlmodel: mlmodel.is_some(),
            python: mlmodel
                .and_then(mlmodel_python_version)
                .or_else(|| python_env.and_then(python_env_python)),
            pins: requirements.map(pinned_packages),
        }
    }
}

/// `flavors.python_function.python_version` of an `MLmodel` document.
pub fn mlmodel_python_version(mlmodel: &str) -> Option<String> {
    yaml_scalar(mlmodel, &["flavors", "python_function", "python_version"])
}

/// `python` of a `python_env.yaml` document.
pub fn python_env_python(python_env: &str) -> Option<String> {
    yaml_scalar(python_env, &["python"])
}

/// (major, minor) of a Python version as MLflow writes it: `3.11.7` → (3, 11).
pub fn python_minor(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.trim().split('.');
    Some((number(parts.next()?)?, number(parts.next()?)?))
}

/// (major, minor) of a Lambda Python runtime: `python3.13` → (3, 13); `None` for any other runtime.
pub fn runtime_minor(runtime: &str) -> Option<(u32, u32)> {
    let (major, minor) = runtime.strip_prefix("python")?.split_once('.')?;
    Some((number(major)?, number(minor)?))
}

fn number(digits: &str) -> Option<u32> {
    digits
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| digits.parse().ok())?
}

/// What the rule says about one version's Python and the function's runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum PythonCheck {
    /// Same minor (a patch release is no difference).
    Matches,
    /// Saved on another minor than the function runs: refused.
    OtherMinor {
        saved: String,
        saved_minor: (u32, u32),
    },
    /// The version says nothing usable about its Python: not checked, said so.
    Unknown(UnknownPython),
}

#[derive(Debug, Clone, PartialEq)]
pub enum UnknownPython {
    /// No `MLmodel` at the artifact location.
    NoMlmodel,
    /// `MLmodel` names no `python_version` and there is no `python_env.yaml` that does.
    NoPythonVersion,
    /// A `python_version` that is not one (`3.11.7`).
    NotAVersion(String),
}

/// The rule: a version is deployable on a function whose runtime is `runtime` (major, minor) when it was saved on
/// the same minor. A version that does not say is not refused: the smoke test of the new version still runs it.
pub fn check_python(saved: &SavedEnv, runtime: (u32, u32)) -> PythonCheck {
    let Some(python) = &saved.python else {
        return PythonCheck::Unknown(if saved.has_mlmodel {
            UnknownPython::NoPythonVersion
        } else {
            UnknownPython::NoMlmodel
        });
    };
    match python_minor(python) {
        None => PythonCheck::Unknown(UnknownPython::NotAVersion(python.clone())),
        Some(minor) if minor == runtime => PythonCheck::Matches,
        Some(saved_minor) => PythonCheck::OtherMinor {
            saved: python.clone(),
            saved_minor,
        },
    }
}

/// A package pinned by a version at another version than the runtime layer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    /// Normalised name (`mlflow` for `mlflow-skinny` too).
    pub package: String,
    /// What the version's `requirements.txt` pins.
    pub saved: String,
    /// What the layer has.
    pub layer: String,
}

/// The [`COMPARED_PACKAGES`] a version pins at another version than the layer has, in that order. A package
/// the version does not pin, or the layer does not list, is not compared.
pub fn package_diffs(
    pins: &BTreeMap<String, String>,
    layer_packages: &BTreeMap<String, String>,
) -> Vec<PackageDiff> {
    let layer: BTreeMap<&str, &str> = layer_packages
        .iter()
        .filter_map(|(name, version)| Some((compared_name(&normalise(name))?, version.as_str())))
        .collect();
    let saved: BTreeMap<&str, &str> = pins
        .iter()
        .filter_map(|(name, version)| Some((compared_name(name)?, version.as_str())))
        .collect();
    COMPARED_PACKAGES
        .iter()
        .filter_map(|package| {
            let (saved, layer) = (saved.get(package)?, layer.get(package)?);
            (!same_version(saved, layer)).then(|| PackageDiff {
                package: package.to_string(),
                saved: saved.to_string(),
                layer: layer.to_string(),
            })
        })
        .collect()
}

fn compared_name(normalised: &str) -> Option<&'static str> {
    let name = if normalised == "mlflow-skinny" {
        "mlflow"
    } else {
        normalised
    };
    COMPARED_PACKAGES.iter().copied().find(|p| *p == name)
}

/// A package name as PEP 503 compares them: lowercase, runs of `-`, `_`, `.` as one `-`.
fn normalise(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Two versions of a package are the same release: `2.4` and `2.4.0` are (PEP 440 pads with zeros).
fn same_version(a: &str, b: &str) -> bool {
    let release = |v: &str| -> Option<Vec<u64>> {
        let mut parts: Vec<u64> = v
            .trim()
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        Some(parts)
    };
    match (release(a), release(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a.trim().eq_ignore_ascii_case(b.trim()),
    }
}

/// The exact pins (`name==version`, extras and markers allowed) of a pip requirements file, by normalised name.
/// Options (`-r`, `--hash`), URLs, ranges and comments are not pins.
pub fn pinned_packages(requirements: &str) -> BTreeMap<String, String> {
    requirements
        .lines()
        .filter_map(|line| {
            let line = line.split(" #").next()?.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
                return None;
            }
            let requirement = line.split(';').next()?.trim();
            let (name, version) = requirement.split_once("==")?;
            let version = version.trim().split([',', ' ', '\t']).next()?;
            let name = name.split('[').next()?.trim();
            let plain = |s: &str| {
                !s.is_empty()
                    && s.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+')
                    })
            };
            (plain(name) && plain(version) && !version.starts_with('='))
                .then(|| (normalise(name), version.to_string()))
        })
        .collect()
}

/// The scalar at `path` (a key per level) of a block-style YAML document, as MLflow writes `MLmodel` and
/// `python_env.yaml` (PyYAML's `safe_dump`: one key per line, nested mappings indented). Anything else (a flow
/// mapping on the way, a key that is not there) is `None`; so is a null value.
fn yaml_scalar(text: &str, path: &[&str]) -> Option<String> {
    // Indent of each key of `path` matched so far, and of the keys of the mapping being read.
    let mut matched: Vec<usize> = Vec::new();
    let mut level: Option<usize> = None;
    for line in text.lines() {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') || content.starts_with("---") {
            continue;
        }
        let indent = line.len() - content.len();
        if matched.last().is_some_and(|&parent| indent <= parent) {
            return None; // left the matched key's mapping: keys are unique, it has no such child
        }
        match level {
            None => level = Some(indent),
            Some(l) if indent > l => continue, // inside a sibling's value
            Some(l) if indent < l => return None,
            Some(_) => {}
        }
        let Some((key, value)) = split_key(content) else {
            continue;
        };
        if key != path[matched.len()] {
            continue;
        }
        if matched.len() + 1 == path.len() {
            return scalar(value);
        }
        if !value.is_empty() {
            return None;
        }
        matched.push(indent);
        level = None;
    }
    None
}

/// `key: value` → (key, value), `key:` → (key, "").
fn split_key(content: &str) -> Option<(&str, &str)> {
    let (key, value) = match content.split_once(": ") {
        Some((k, v)) => (k, v),
        None => (content.strip_suffix(':')?, ""),
    };
    let key = key.trim();
    let value = value.trim();
    let value = if value.starts_with('#') { "" } else { value };
    (!key.is_empty() && !key.starts_with("- ")).then_some((key, value))
}

fn scalar(value: &str) -> Option<String> {
    let text = if let Some(rest) = value.strip_prefix('\'') {
        rest.split_once('\'').map(|(v, _)| v)?.to_string()
    } else if let Some(rest) = value.strip_prefix('"') {
        rest.split_once('"').map(|(v, _)| v)?.to_string()
    } else {
        let v = value.split(" #").next().unwrap_or_default().trim();
        if matches!(v, "" | "~" | "null" | "Null" | "NULL") {
            return None;
        }
        v.to_string()
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As MLflow 3 writes it for a `PythonModel` (trimmed).
    const MLMODEL_TEXT: &str = "artifact_path: model
flavors:
  python_function:
    cloudpickle_version: 3.1.3
    code: null
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.pyfunc.model
    python_model: python_model.pkl
    python_version: 3.11.7
    streamable: false
mlflow_version: 3.17.2
signature:
  inputs: '[{\"type\": \"double\", \"name\": \"age\", \"required\": true}]'
utc_time_created: '2026-12-01 13:21:17.602243'
";

    const PYTHON_ENV_TEXT: &str = "python: 3.13.0
build_dependencies:
- pip==23.2.1
- setuptools==65.5.0
- wheel
dependencies:
- -r requirements.txt
";

    fn saved(python: Option<&str>) -> SavedEnv {
        SavedEnv {
            has_mlmodel: true,
            python: python.map(str::to_string),
            pins: None,
        }
    }

    #[test]
    fn the_python_is_read_from_mlmodel_and_else_from_python_env_yaml() {
        assert_eq!(
            mlmodel_python_version(MLMODEL_TEXT).as_deref(),
            Some("3.11.7")
        );
        assert_eq!(
            python_env_python(PYTHON_ENV_TEXT).as_deref(),
            Some("3.13.0")
        );
        let env = SavedEnv::from_files(Some(MLMODEL_TEXT), Some(PYTHON_ENV_TEXT), None);
        assert_eq!(env.python.as_deref(), Some("3.11.7"), "MLmodel first");
        let without = MLMODEL_TEXT.replace("    python_version: 3.11.7\n", "");
        let env = SavedEnv::from_files(Some(&without), Some(PYTHON_ENV_TEXT), None);
        assert_eq!(env.python.as_deref(), Some("3.13.0"));
        assert!(env.has_mlmodel);
        let env = SavedEnv::from_files(Some(&without), None, None);
        assert_eq!(env.python, None);
    }

    #[test]
    fn only_the_python_function_flavor_says_which_python() {
        let elsewhere = "python_version: 3.9.1\nflavors:\n  sklearn:\n    python_version: 3.9.1\n  python_function:\n    loader_module: x\n";
        assert_eq!(mlmodel_python_version(elsewhere), None);
        let quoted = "flavors:\n  python_function:  # the pyfunc flavor\n    python_version: '3.12.1'  # quoted\n";
        assert_eq!(mlmodel_python_version(quoted).as_deref(), Some("3.12.1"));
        let null = "flavors:\n  python_function:\n    python_version: null\n";
        assert_eq!(mlmodel_python_version(null), None);
        let flow = "flavors: {python_function: {python_version: 3.11.7}}\n";
        assert_eq!(mlmodel_python_version(flow), None, "not block style");
    }

    #[test]
    fn the_same_minor_is_deployable() {
        assert_eq!(
            check_python(&saved(Some("3.13.0")), (3, 13)),
            PythonCheck::Matches
        );
    }

    #[test]
    fn a_patch_release_is_no_difference() {
        assert_eq!(
            check_python(&saved(Some("3.13.9")), (3, 13)),
            PythonCheck::Matches
        );
        assert_eq!(
            check_python(&saved(Some("3.13")), (3, 13)),
            PythonCheck::Matches
        );
    }

    #[test]
    fn another_minor_is_refused() {
        assert_eq!(
            check_python(&saved(Some("3.11.7")), (3, 13)),
            PythonCheck::OtherMinor {
                saved: "3.11.7".into(),
                saved_minor: (3, 11)
            }
        );
        assert!(matches!(
            check_python(&saved(Some("3.14.0")), (3, 13)),
            PythonCheck::OtherMinor { .. }
        ));
    }

    #[test]
    fn a_version_that_does_not_say_is_unknown_not_refused() {
        assert_eq!(
            check_python(&saved(None), (3, 13)),
            PythonCheck::Unknown(UnknownPython::NoPythonVersion)
        );
        assert_eq!(
            check_python(&SavedEnv::default(), (3, 13)),
            PythonCheck::Unknown(UnknownPython::NoMlmodel)
        );
        assert_eq!(
            check_python(&saved(Some("three")), (3, 13)),
            PythonCheck::Unknown(UnknownPython::NotAVersion("three".into()))
        );
    }

    #[test]
    fn lambda_runtimes_name_a_python_minor() {
        assert_eq!(runtime_minor("python3.13"), Some((3, 13)));
        assert_eq!(runtime_minor("python3.9"), Some((3, 9)));
        for other in [
            "provided.al2023",
            "python3",
            "python3.13.1",
            "nodejs22.x",
            "python3.x",
        ] {
            assert_eq!(runtime_minor(other), None, "{other}");
        }
    }

    #[test]
    fn only_exact_pins_are_read_from_requirements() {
        let pins = pinned_packages(
            "mlflow-skinny==3.17.2\n# a comment\nNumPy == 2.2.6 ; python_version >= '3.11'\n\
             pandas[performance]==2.3.0  # pinned\ncloudpickle>=3.1\n-r other.txt\nscikit_learn==1.9.1\n\
             torch @ https://example.org/torch.whl\n",
        );
        assert_eq!(
            pins,
            BTreeMap::from([
                ("mlflow-skinny".into(), "3.17.2".into()),
                ("numpy".into(), "2.2.6".into()),
                ("pandas".into(), "2.3.0".into()),
                ("scikit-learn".into(), "1.9.1".into()),
            ])
        );
    }

    #[test]
    fn packages_are_compared_with_the_layer_mlflow_skinny_as_mlflow() {
        let pins =
            pinned_packages("mlflow==3.1.0\ncloudpickle==3.1.3\nnumpy==2.4\npandas==2.3.0\n");
        let layer = BTreeMap::from([
            ("mlflow-skinny".to_string(), "3.17.2".to_string()),
            ("numpy".to_string(), "2.4.0".to_string()),
            ("pandas".to_string(), "3.1.1".to_string()),
            ("cloudpickle".to_string(), "3.1.3".to_string()),
        ]);
        let diffs = package_diffs(&pins, &layer);
        let names: Vec<_> = diffs
            .iter()
            .map(|d| format!("{} {} {}", d.package, d.saved, d.layer))
            .collect();
        assert_eq!(names, ["mlflow 3.1.0 3.17.2", "pandas 2.3.0 3.1.1"]);
        assert!(package_diffs(&BTreeMap::new(), &layer).is_empty());
    }
}
