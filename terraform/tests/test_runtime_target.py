"""Every Terraform default and example follows the one runtime target, runtime/lambda-target.json, and names the
files `make package-runtime` writes (runtime/packaging/build_layer.py): a function created on another Python than
the layer was built for fails every invoke, and a file name the build does not write fails the first apply."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import tfparse

REPO = tfparse.TERRAFORM_DIR.parent
TARGET = json.loads((REPO / "runtime" / "lambda-target.json").read_text(encoding="utf-8"))
BUILD_LAYER = REPO / "runtime" / "packaging" / "build_layer.py"
MODEL_FUNCTION = tfparse.MODULES_DIR / "model-function"
ARTIFACT_SYNC = tfparse.MODULES_DIR / "artifact-sync"
RUNTIME_LAYER = tfparse.MODULES_DIR / "runtime-layer"
EXAMPLES = [tfparse.EXAMPLES_DIR / "minimal", tfparse.EXAMPLES_DIR / "complete"]
ARCH = "{arch}"  # how a file name pattern below stands for the architecture


def build_constants(path: Path = BUILD_LAYER) -> dict[str, str]:
    """The module-level string constants of build_layer.py, read without importing it."""
    constants = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return constants


# The build's own names; the fallbacks are the names its docstring documents, for a build_layer.py without them.
_BUILD = build_constants()
FUNCTION_ZIP = _BUILD.get("FUNCTION_NAME", "ferry-runtime-function.zip")
LAYER_ZIP = _BUILD.get("LAYER_ZIP_PATTERN", "ferry-runtime-layer-{arch}.zip")
REPORT = _BUILD.get("REPORT_NAME", "ferry-runtime-layer.json")
DIST_NAMES = {FUNCTION_ZIP, LAYER_ZIP, REPORT}


def ids(directory: Path) -> str:
    return directory.name


def allowed_values(variable: dict, ref: str) -> list[list[str]]:
    """The lists of `contains([...], <ref>)` in a variable's validation conditions."""
    found = []
    for validation in variable.get("validation", []):
        condition = tfparse.expression(validation["condition"])
        found += [json.loads(m) for m in re.findall(r"contains\((\[[^\]]*\]),\s*" + re.escape(ref) + r"\)", condition)]
    return found


def optional_default(object_type: str, attribute: str) -> str | None:
    """The default of `attribute = optional(string, "...")` in an object type expression."""
    match = re.search(rf'\b{attribute}\s*=\s*optional\(string,\s*"([^"]*)"\)', tfparse.expression(object_type))
    return match.group(1) if match else None


def locals_of(directory: Path) -> dict:
    return {k: v for p in tfparse.tf_files(directory) for block in tfparse.load(p).get("locals", []) for k, v in block.items()}


def as_pattern(text: str) -> str:
    """A file name as Terraform or a README writes it, with the architecture (in any spelling) as `{arch}`."""
    for spelling in ["${var.architecture}", "${local.architecture}", "<architecture>", "<arch>", *TARGET["architectures"]]:
        text = text.replace(spelling, ARCH)
    return text


# ---- the target itself --------------------------------------------------------------------------------------
def test_the_target_is_one_python_runtime_on_lambdas_architectures():
    assert re.fullmatch(r"python3\.\d+", TARGET["runtime"])
    assert TARGET["architectures"] and set(TARGET["architectures"]) <= {"x86_64", "arm64"}
    assert "{arch}" in LAYER_ZIP, f"build_layer.py's LAYER_ZIP_PATTERN {LAYER_ZIP!r} has no {{arch}}"


# ---- model-function -----------------------------------------------------------------------------------------
def test_model_function_defaults_to_the_target_runtime_and_handler_and_allows_no_other_runtime():
    package = tfparse.variables(MODEL_FUNCTION)["package"]
    assert optional_default(package["type"], "runtime") == TARGET["runtime"]
    assert optional_default(package["type"], "handler") == TARGET["handler"]
    assert allowed_values(package, "var.package.runtime") == [[TARGET["runtime"]]]


@pytest.mark.parametrize("module", [MODEL_FUNCTION, ARTIFACT_SYNC, RUNTIME_LAYER], ids=ids)
def test_architecture_defaults_to_x86_64_and_allows_exactly_the_target_architectures(module: Path):
    variable = tfparse.variables(module)["architecture"]
    assert tfparse.plain(variable["default"]) == "x86_64" and "x86_64" in TARGET["architectures"]
    assert [sorted(v) for v in allowed_values(variable, "var.architecture")] == [sorted(TARGET["architectures"])]


@pytest.mark.parametrize("module", [MODEL_FUNCTION, ARTIFACT_SYNC], ids=ids)
def test_the_function_runs_on_its_architecture_variable(module: Path):
    fn = tfparse.all_blocks(module, "resource", nested=True)["aws_lambda_function.this"]
    assert fn["architectures"] == ["${var.architecture}"]


# ---- artifact-sync: Rust on the target's Amazon Linux -------------------------------------------------------
def test_sync_function_runs_on_the_targets_amazon_linux():
    package = tfparse.variables(ARTIFACT_SYNC)["package"]
    runtime = f"provided.al{TARGET['amazon_linux']}"
    assert optional_default(package["type"], "runtime") == runtime
    conditions = [tfparse.expression(v["condition"]) for v in package["validation"]]
    assert any(f'var.package.runtime == "{runtime}"' in c for c in conditions), "the sync runtime is not validated"


# ---- runtime-layer ------------------------------------------------------------------------------------------
def test_runtime_layer_defaults_to_and_allows_only_the_target_runtime():
    variable = tfparse.variables(RUNTIME_LAYER)["runtime"]
    assert tfparse.plain(variable["default"]) == TARGET["runtime"]
    assert allowed_values(variable, "var.runtime") == [[TARGET["runtime"]]]


def test_runtime_layer_is_compatible_with_exactly_its_runtime_and_architecture_and_published_from_s3():
    resources = tfparse.all_blocks(RUNTIME_LAYER, "resource", nested=True)
    layer = resources["aws_lambda_layer_version.this"]
    assert layer["compatible_runtimes"] == ["${var.runtime}"]
    assert layer["compatible_architectures"] == ["${var.architecture}"]
    assert layer["s3_bucket"] == "${aws_s3_object.layer.bucket}" and layer["s3_key"] == "${aws_s3_object.layer.key}"
    assert "source_code_hash" in layer and "filename" not in layer
    assert tfparse.plain(layer["skip_destroy"]) is True, "a new build must not delete the layer frozen versions use"


def test_runtime_layer_object_is_kms_encrypted_and_a_new_build_is_a_new_version_the_layer_pins():
    resources = tfparse.all_blocks(RUNTIME_LAYER, "resource", nested=True)
    s3_object = tfparse.plain(resources["aws_s3_object.layer"])
    assert s3_object["server_side_encryption"] == "aws:kms" and s3_object["kms_key_id"] == "${var.kms_key_arn}"
    assert s3_object["source"] == "${local.layer_zip}" and s3_object["source_hash"] == "${local.sha256}"
    assert re.search(r"filesha256\(local\.layer_zip\)", tfparse.expression(locals_of(RUNTIME_LAYER)["sha256"]))
    # One key per architecture: a key per hash would make a rebuild replace (delete) the object, which Object Lock
    # in COMPLIANCE mode refuses.
    assert "sha256" not in s3_object["key"]
    layer = tfparse.plain(resources["aws_lambda_layer_version.this"])
    assert layer["s3_object_version"] == "${aws_s3_object.layer.version_id}"


def test_runtime_layer_reads_the_files_the_build_writes():
    values = {k: tfparse.plain(v) for k, v in locals_of(RUNTIME_LAYER).items()}
    assert as_pattern(values["layer_zip"]) == f"${{var.dist_dir}}/{LAYER_ZIP}"
    assert values["report"] == f"${{var.dist_dir}}/{REPORT}"


# ---- examples -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_defaults_are_the_target(example: Path):
    variables = tfparse.variables(example)
    model_runtime = variables["model_runtime"]["type"]
    assert optional_default(model_runtime, "runtime") == TARGET["runtime"]
    assert optional_default(model_runtime, "architecture") == "x86_64"
    assert optional_default(model_runtime, "handler") == TARGET["handler"]
    assert optional_default(variables["sync_package"]["type"], "architecture") in TARGET["architectures"]


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_runs_functions_and_layer_on_one_runtime_and_architecture(example: Path):
    local = {k: tfparse.plain(v) for k, v in locals_of(example).items()}
    assert local["runtime"] == "${var.model_runtime.runtime}"
    assert local["architecture"] == "${var.model_runtime.architecture}"
    modules = {k: tfparse.plain(v) for k, v in tfparse.all_blocks(example, "module").items()}
    function, layer = modules["model_function"], modules["runtime_layer"]
    assert function["package"]["runtime"] == "${local.runtime}" and function["architecture"] == "${local.architecture}"
    assert layer["runtime"] == "${local.runtime}" and layer["architecture"] == "${local.architecture}"
    assert "module.runtime_layer[*].layer_version_arn" in function["package"]["layers"]
    runtime = tfparse.plain(tfparse.outputs(example)["ferry_platform"]["value"])["runtime"]
    assert runtime["python"] == "${local.runtime}" and runtime["architecture"] == "${local.architecture}"
    assert "module.runtime_layer[0].packages" in runtime["layer_packages"]


@pytest.mark.parametrize("example", EXAMPLES, ids=ids)
def test_example_takes_the_function_and_the_layer_from_the_repositorys_dist(example: Path):
    variables = tfparse.variables(example)
    default = tfparse.plain(variables["runtime_dist_dir"]["default"])
    assert (example / default).resolve() == REPO / "dist"
    local = {k: tfparse.plain(v) for k, v in locals_of(example).items()}
    assert local["function_zip"] == f"${{local.dist_dir}}/{FUNCTION_ZIP}"
    assert tfparse.plain(tfparse.all_blocks(example, "module")["runtime_layer"])["dist_dir"] == "${local.dist_dir}"


# ---- everything under terraform/ ----------------------------------------------------------------------------
def text_files() -> list[Path]:
    skip = {".terraform", "__pycache__"}
    return [
        p for p in sorted(tfparse.TERRAFORM_DIR.rglob("*"))
        if p.is_file() and not skip & set(p.parts) and p.suffix in {".tf", ".md", ".py", ".example", ".mk", ".hcl", ""}
    ]


def test_nothing_under_terraform_names_another_python_runtime():
    pattern = re.compile(r"python ?3\.(\d+)", re.I)
    wanted = TARGET["runtime"].removeprefix("python3.")
    found = [
        f"{p.relative_to(REPO)}:{n}: {m.group(0)}"
        for p in text_files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        for m in pattern.finditer(line)
        if m.group(1) != wanted
    ]
    assert not found, f"runtime/lambda-target.json says {TARGET['runtime']}; these name another Python:\n" + "\n".join(found)


def test_every_dist_file_named_under_terraform_is_one_the_build_writes():
    pattern = re.compile(r"ferry-runtime-[A-Za-z0-9_.${}<>-]*?\.(?:zip|json)")
    found = [
        f"{p.relative_to(REPO)}:{n}: {m.group(0)}"
        for p in text_files()
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        for m in pattern.finditer(line)
        if as_pattern(m.group(0)) not in DIST_NAMES
    ]
    assert not found, f"make package-runtime writes {sorted(DIST_NAMES)}; these name other files:\n" + "\n".join(found)
