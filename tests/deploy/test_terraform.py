"""Static checks of the AWS deployment under deploy/: structure, environment values, security
invariants, checkov, the pipeline files, and `terraform validate` of the root configuration and
of every module, offline, from the machine's filesystem mirror of the AWS provider.

The security checks walk the HCL parsed by python-hcl2 and are themselves tested on a small bad
configuration, so a check that silently stopped matching would fail here too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TF_ROOT = REPO_ROOT / "deploy" / "terraform"
# The one root configuration; environments are values (envs/<env>/) applied to it.
ROOT_DIR = TF_ROOT / "root"
AWS_DIR = REPO_ROOT / "deploy" / "aws"
MODULES = ("network", "database", "service", "ingestion", "monitoring", "pipeline")
# Modules the others call (never the root): the same checks apply to them.
BUILDING_BLOCKS = ("kms_key", "lambda_role")
ALL_MODULES = (*MODULES, *BUILDING_BLOCKS)
ENVS = ("dev", "staging", "prod")
MODULE_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md")
ROOT_FILES = ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "backend.tf")
# Environments hold no code: only their values and their partial backend configuration.
ENV_FILES = ("terraform.tfvars", "backend.hcl")

WORLD = frozenset({"0.0.0.0/0", "::/0"})
ALB_WORLD_PORTS = frozenset({80, 443})
SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)
SSE_ALGORITHMS = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
CHECKOV_INSTALL_HINT = (
    "checkov not found: install it into its own venv (its pins clash with the project's): "
    "python3 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov "
    "(or point CHECKOV_BIN at a checkov binary)"
)


# --- Parsing ------------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    """python-hcl2 >= 5 keeps string quotes ('"x"'); older versions drop them."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def normalize(node: Any) -> Any:
    """Strip quotes and parser metadata (``__is_block__``) so all hcl2 versions look alike."""
    if isinstance(node, dict):
        return {_unquote(k): normalize(v) for k, v in node.items() if not k.startswith("__")}
    if isinstance(node, list):
        return [normalize(item) for item in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


def parse_hcl(text: str) -> dict[str, Any]:
    """Parse HCL text into normalized Python data."""
    document: dict[str, Any] = normalize(hcl2.loads(text))
    return document


def tf_files() -> list[Path]:
    """Every .tf, .tfvars and .hcl file under deploy/terraform (provider caches excluded)."""
    files = [*TF_ROOT.rglob("*.tf"), *TF_ROOT.rglob("*.tfvars"), *TF_ROOT.rglob("*.hcl")]
    files = [p for p in files if p.name != ".terraform.lock.hcl"]
    return sorted(p for p in files if ".terraform" not in p.parts)


@cache
def parsed(path: Path) -> dict[str, Any]:
    """The normalized parse of one file, cached for the session."""
    return parse_hcl(path.read_text(encoding="utf-8"))


def directory_docs(directory: Path) -> list[dict[str, Any]]:
    """Parsed .tf files of one Terraform directory (a module or the root configuration)."""
    return [parsed(p) for p in sorted(directory.glob("*.tf"))]


def blocks(docs: list[dict[str, Any]], kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, body) of every one-label block of a kind: variable, output, module."""
    for doc in docs:
        for entry in doc.get(kind, []):
            yield from entry.items()


@dataclass(frozen=True)
class Resource:
    """One `resource "type" "name"` block of a Terraform directory."""

    where: str
    type: str
    name: str
    body: dict[str, Any]

    @property
    def address(self) -> str:
        return f"{self.where}/{self.type}.{self.name}"


def resources(docs: list[dict[str, Any]], where: str) -> list[Resource]:
    """Every resource block of a directory."""
    found = []
    for doc in docs:
        for entry in doc.get("resource", []):
            for rtype, named in entry.items():
                for name, body in named.items():
                    found.append(Resource(where, rtype, name, body))
    return found


def locals_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """All `locals` of a directory merged into one mapping."""
    merged: dict[str, Any] = {}
    for doc in docs:
        for block in doc.get("locals", []):
            merged.update(block)
    return merged


def variable_defaults(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Defaults of a directory's variables (those that have one)."""
    return {name: body["default"] for name, body in blocks(docs, "variable") if "default" in body}


def walk(node: Any) -> Iterator[Any]:
    """Every value nested in parsed HCL, depth first, the node itself included."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def first_block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The first nested block of a name (hcl2 gives blocks as lists), or {}."""
    value = body.get(name, [])
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], dict) else {}
    return value if isinstance(value, dict) else {}


# --- Security invariants --------------------------------------------------------------------------


def referenced(expression: Any, rtype: str) -> set[str]:
    """Names of `rtype` resources an expression (string or list of strings) refers to."""
    pattern = re.compile(rf"\b{re.escape(rtype)}\.([A-Za-z0-9_-]+)")
    texts = expression if isinstance(expression, list) else [expression]
    return {m for text in texts if isinstance(text, str) for m in pattern.findall(text)}


def as_int(value: Any, defaults: dict[str, Any], local_values: dict[str, Any]) -> int | None:
    """A port number: a literal, or a variable default / local that is one; None if unprovable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.strip().lstrip("-").isdigit():
            return int(value)
        match = re.fullmatch(r"\$\{(var|local)\.([A-Za-z0-9_]+)\}", value.strip())
        if match:
            table = defaults if match.group(1) == "var" else local_values
            if match.group(2) in table:
                return as_int(table[match.group(2)], {}, {})
    return None


def as_list(value: Any) -> list[Any]:
    """An attribute that may be a single value or a list, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Ingress:
    """One ingress rule, whichever of the three Terraform spellings declared it."""

    address: str
    security_group: str | None
    sources: frozenset[str]
    protocol: str
    from_port: int | None
    to_port: int | None


def ingress_rules(
    found: list[Resource], defaults: dict[str, Any], local_values: dict[str, Any]
) -> tuple[list[Ingress], list[str]]:
    """All ingress rules of a directory, and findings for rules that cannot be verified."""
    rules: list[Ingress] = []
    problems: list[str] = []

    def port(value: Any) -> int | None:
        return as_int(value, defaults, local_values)

    for r in found:
        if r.type == "aws_security_group":
            for rule in as_list(r.body.get("ingress")):
                sources = [
                    *as_list(rule.get("cidr_blocks")),
                    *as_list(rule.get("ipv6_cidr_blocks")),
                ]
                rules.append(
                    Ingress(
                        r.address,
                        r.name,
                        frozenset(str(s) for s in sources),
                        str(rule.get("protocol", "")),
                        port(rule.get("from_port")),
                        port(rule.get("to_port")),
                    )
                )
            for dynamic in as_list(r.body.get("dynamic")):
                if "ingress" in dynamic:
                    problems.append(f"{r.address}: dynamic ingress blocks cannot be verified")
        elif r.type == "aws_security_group_rule" and r.body.get("type") == "ingress":
            sources = [
                *as_list(r.body.get("cidr_blocks")),
                *as_list(r.body.get("ipv6_cidr_blocks")),
            ]
            rules.append(
                Ingress(
                    r.address,
                    next(
                        iter(referenced(r.body.get("security_group_id"), "aws_security_group")),
                        None,
                    ),
                    frozenset(str(s) for s in sources),
                    str(r.body.get("protocol", "")),
                    port(r.body.get("from_port")),
                    port(r.body.get("to_port")),
                )
            )
        elif r.type == "aws_vpc_security_group_ingress_rule":
            sources = [*as_list(r.body.get("cidr_ipv4")), *as_list(r.body.get("cidr_ipv6"))]
            rules.append(
                Ingress(
                    r.address,
                    next(
                        iter(referenced(r.body.get("security_group_id"), "aws_security_group")),
                        None,
                    ),
                    frozenset(str(s) for s in sources),
                    str(r.body.get("ip_protocol", "")),
                    port(r.body.get("from_port")),
                    port(r.body.get("to_port")),
                )
            )
    return rules, problems


def _interpolation_end(text: str, start: int) -> int:
    """Index of the `}` closing the `${` at `start` (braces balanced)."""
    depth = 0
    for index in range(start + 1, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return len(text) - 1


def inline_objects(text: str) -> list[dict[str, str]]:
    """Innermost object literals written inside an expression string, as {key: raw value}.

    hcl2 leaves expressions such as `jsonencode([{ name = "X", value = "${var.y}" }])` or
    `concat(local.env, [{ name = "X", value = "y" }])` as text; this reads their objects.
    Template interpolations inside them are kept verbatim in the values.
    """
    if text.startswith("${") and _interpolation_end(text, 0) == len(text) - 1:
        text = text[2:-1]
    saved: list[str] = []
    plain: list[str] = []
    index = 0
    while index < len(text):
        if text.startswith("${", index):
            end = _interpolation_end(text, index)
            saved.append(text[index : end + 1])
            plain.append(f"\x00{len(saved) - 1}\x00")
            index = end + 1
        else:
            plain.append(text[index])
            index += 1

    def restore(value: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: saved[int(m.group(1))], value)

    objects = []
    for body in re.findall(r"\{([^{}]*)\}", "".join(plain)):
        pairs = re.findall(
            r"""(?:^|[\s,])"?([A-Za-z_][A-Za-z0-9_]*)"?\s*[=:]\s*("[^"]*"|[^,\s][^,]*)""", body
        )
        if pairs:
            objects.append({key: restore(_unquote(value.strip())) for key, value in pairs})
    return objects


def objects_having(root: Any, *keys: str) -> list[dict[str, Any]]:
    """Objects under `root` (parsed, or written inline in expressions) that have all `keys`."""
    found: list[dict[str, Any]] = []
    for node in walk(root):
        if isinstance(node, dict) and all(key in node for key in keys):
            found.append(node)
        elif isinstance(node, str) and "{" in node:
            found += [obj for obj in inline_objects(node) if all(key in obj for key in keys)]
    return found


def environment_names(docs: list[dict[str, Any]], found: list[Resource]) -> list[str]:
    """Names of every ECS `environment` entry ({name, value} objects) in a directory.

    Looks at objects in `locals` and in task definitions, parsed or written inline inside
    expressions (e.g. `concat(local.env, [{ name = "X", value = "y" }])`).
    """
    roots: list[Any] = [
        locals_of(docs),
        *(r.body for r in found if r.type == "aws_ecs_task_definition"),
    ]
    return [str(obj["name"]) for root in roots for obj in objects_having(root, "name", "value")]


def security_findings(docs: list[dict[str, Any]], where: str) -> list[str]:
    """Violations of the security invariants in one Terraform directory (empty when clean)."""
    found = resources(docs, where)
    defaults = variable_defaults(docs)
    local_values = locals_of(docs)
    findings: list[str] = []

    # Databases: never public, always encrypted.
    for r in found:
        if r.type in ("aws_db_instance", "aws_rds_cluster"):
            if r.body.get("publicly_accessible", False) is not False:
                findings.append(
                    f"{r.address}: publicly_accessible must be absent or literally false"
                )
            if r.body.get("storage_encrypted") is not True:
                findings.append(f"{r.address}: storage_encrypted must be literally true")

    # No hosts to SSH into.
    for r in found:
        if r.type in ("aws_instance", "aws_key_pair"):
            findings.append(f"{r.address}: no EC2 instances or key pairs (no bastion, no SSH)")

    # Ingress: nothing on port 22; the world only reaches the ALB's security group on 80/443.
    alb_groups = {
        name
        for r in found
        if r.type in ("aws_lb", "aws_alb")
        for name in referenced(r.body.get("security_groups"), "aws_security_group")
    }
    rules, problems = ingress_rules(found, defaults, local_values)
    findings += problems
    for rule in rules:
        all_ports = rule.protocol in ("-1", "all")
        if not all_ports and (rule.from_port is None or rule.to_port is None):
            findings.append(f"{rule.address}: ingress port cannot be proven (use a literal)")
            continue
        if all_ports or (
            rule.from_port is not None
            and rule.to_port is not None
            and rule.from_port <= 22 <= rule.to_port
        ):
            findings.append(f"{rule.address}: ingress includes port 22 (no SSH anywhere)")
        world = sorted(rule.sources & WORLD)
        if world:
            on_alb = rule.security_group in alb_groups
            ports_ok = (
                not all_ports
                and rule.from_port == rule.to_port
                and rule.from_port in ALB_WORLD_PORTS
            )
            if not (on_alb and ports_ok):
                findings.append(
                    f"{rule.address}: ingress from {', '.join(world)} is only allowed on the ALB's "
                    f"security group, ports 80/443"
                )

    # Buckets: public access block (all four), default encryption, versioning enabled.
    companions: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in found:
        for bucket in referenced(r.body.get("bucket"), "aws_s3_bucket"):
            companions.setdefault(bucket, {}).setdefault(r.type, []).append(r.body)
    for r in found:
        if r.type != "aws_s3_bucket":
            continue
        mine = companions.get(r.name, {})
        blocks_ok = any(
            all(
                pab.get(flag) is True
                for flag in (
                    "block_public_acls",
                    "block_public_policy",
                    "ignore_public_acls",
                    "restrict_public_buckets",
                )
            )
            for pab in mine.get("aws_s3_bucket_public_access_block", [])
        )
        if not blocks_ok:
            findings.append(
                f"{r.address}: needs an aws_s3_bucket_public_access_block with all four flags true"
            )
        sse_ok = any(
            first_block(first_block(sse, "rule"), "apply_server_side_encryption_by_default").get(
                "sse_algorithm"
            )
            in SSE_ALGORITHMS
            for sse in mine.get("aws_s3_bucket_server_side_encryption_configuration", [])
        )
        if not sse_ok:
            findings.append(
                f"{r.address}: needs an aws_s3_bucket_server_side_encryption_configuration"
            )
        versioning_ok = any(
            first_block(v, "versioning_configuration").get("status") == "Enabled"
            for v in mine.get("aws_s3_bucket_versioning", [])
        )
        if not versioning_ok:
            findings.append(f"{r.address}: needs aws_s3_bucket_versioning with status Enabled")

    # ECS: passwords, secrets and tokens only through `secrets`, never `environment`.
    task_definitions = [r for r in found if r.type == "aws_ecs_task_definition"]
    if task_definitions:
        names = environment_names(docs, found)
        if not names:
            findings.append(
                f"{where}: task definitions found but no environment entries could be read; "
                "build container definitions from literal objects (e.g. jsonencode(local.x))"
            )
        for name in names:
            if SECRET_LIKE.search(name):
                findings.append(f"{where}: {name} is passed in `environment`; use ECS `secrets`")
        for r in task_definitions:
            definitions = r.body.get("container_definitions", "")
            if not (isinstance(definitions, str) and re.search(r"jsonencode\(", definitions)):
                findings.append(
                    f"{r.address}: container_definitions must be jsonencode(...) to be checked"
                )
    return findings


def terraform_directories() -> list[Path]:
    """All modules and the root configuration."""
    return [*(TF_ROOT / "modules" / m for m in ALL_MODULES), ROOT_DIR]


def directory_id(directory: Path) -> str:
    """Test id of a Terraform directory: modules/<name> or root."""
    return str(directory.relative_to(TF_ROOT))


# --- Structure ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TF_ROOT)))
def test_every_terraform_file_parses(path: Path) -> None:
    """Every .tf and .tfvars file is valid HCL2 for python-hcl2."""
    assert isinstance(parsed(path), dict)


def test_there_is_terraform_to_check() -> None:
    """The module, root and environment directories exist, so no check below passes vacuously."""
    directories = [*terraform_directories(), *(TF_ROOT / "envs" / e for e in ENVS)]
    missing = [str(d.relative_to(REPO_ROOT)) for d in directories if not d.is_dir()]
    assert not missing, f"missing Terraform directories: {missing}"
    assert len(tf_files()) >= len(MODULES) * 4 + len(ROOT_FILES) + len(ENVS) * len(ENV_FILES)


@pytest.mark.parametrize("module", ALL_MODULES)
def test_module_has_standard_files(module: str) -> None:
    """Each module has main.tf, variables.tf, outputs.tf, versions.tf and README.md."""
    directory = TF_ROOT / "modules" / module
    missing = [name for name in MODULE_FILES if not (directory / name).is_file()]
    assert not missing, f"modules/{module} lacks {missing}"


def test_root_has_standard_files() -> None:
    """The root configuration has the module files plus backend.tf."""
    missing = [name for name in ROOT_FILES if not (ROOT_DIR / name).is_file()]
    assert not missing, f"root lacks {missing}"


@pytest.mark.parametrize("directory", terraform_directories(), ids=directory_id)
def test_variables_have_type_and_description(directory: Path) -> None:
    """Every variable declares a type and a non-empty description."""
    docs = directory_docs(directory)
    variables = list(blocks(docs, "variable"))
    assert variables, f"{directory.name} declares no variables"
    bad = [
        name
        for name, body in variables
        if "type" not in body or not str(body.get("description", "")).strip()
    ]
    assert not bad, f"variables without type or description in {directory.name}: {bad}"


@pytest.mark.parametrize("directory", terraform_directories(), ids=directory_id)
def test_outputs_have_description(directory: Path) -> None:
    """Every output has a non-empty description."""
    outputs = list(blocks(directory_docs(directory), "output"))
    assert outputs, f"{directory.name} declares no outputs"
    bad = [name for name, body in outputs if not str(body.get("description", "")).strip()]
    assert not bad, f"outputs without description in {directory.name}: {bad}"


@pytest.mark.parametrize("module", ALL_MODULES)
def test_module_readme_lists_inputs_and_outputs(module: str) -> None:
    """A module's README names every one of its variables and outputs."""
    directory = TF_ROOT / "modules" / module
    docs = directory_docs(directory)
    readme = (directory / "README.md").read_text(encoding="utf-8")
    names = [name for name, _ in blocks(docs, "variable")] + [
        name for name, _ in blocks(docs, "output")
    ]
    missing = [name for name in names if f"`{name}`" not in readme]
    assert not missing, f"modules/{module}/README.md does not mention {missing}"


@pytest.mark.parametrize("module", ALL_MODULES)
def test_module_is_reusable(module: str) -> None:
    """Modules configure no provider or backend, pin AWS provider 5.x, have a resource `this`."""
    directory = TF_ROOT / "modules" / module
    docs = directory_docs(directory)
    assert not any(doc.get("provider") for doc in docs), f"modules/{module} configures a provider"
    terraform_blocks = [block for doc in docs for block in doc.get("terraform", [])]
    assert not any("backend" in block for block in terraform_blocks), (
        f"modules/{module} has a backend"
    )
    required = [p for block in terraform_blocks for p in as_list(block.get("required_providers"))]
    aws = next((p["aws"] for p in required if "aws" in p), None)
    assert aws and aws.get("source") == "hashicorp/aws", (
        f"modules/{module} does not require hashicorp/aws"
    )
    assert re.fullmatch(r"~>\s*5(\.\d+)*", str(aws.get("version", ""))), (
        f"AWS provider must be ~> 5.x: {aws}"
    )
    assert any(r.name == "this" for r in resources(docs, module)), (
        f"modules/{module} has no resource named this"
    )


# --- References (what `terraform validate` would catch, without providers) -------------


def expressions(node: Any, skip_keys: frozenset[str] = frozenset({"description"})) -> Iterator[str]:
    """The text of every `${...}` expression in parsed HCL, descriptions excluded."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in skip_keys:
                yield from expressions(value, skip_keys)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value, skip_keys)
    elif isinstance(node, str):
        index = node.find("${")
        while index != -1:
            end = _interpolation_end(node, index)
            yield node[index + 2 : end]
            index = node.find("${", end)


REFERENCE = re.compile(
    r"(?<![\w.])(?:(var|local)\.([A-Za-z0-9_]+)"
    r"|data\.([a-z0-9_]+)\.([A-Za-z0-9_]+)"
    r"|module\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)"
    r"|((?:aws|random)_[a-z0-9_]+)\.([A-Za-z0-9_]+))"
)


def unresolved_references(directory: Path) -> list[str]:
    """References to undeclared variables, locals, resources, data sources or module outputs."""
    docs = directory_docs(directory)
    variables = {name for name, _ in blocks(docs, "variable")}
    local_names = set(locals_of(docs))
    declared = {(r.type, r.name) for r in resources(docs, directory.name)}
    data_sources = {
        (dtype, name)
        for doc in docs
        for entry in doc.get("data", [])
        for dtype, named in entry.items()
        for name in named
    }
    module_outputs = {}
    for name, body in blocks(docs, "module"):
        source = (directory / str(body.get("source", ""))).resolve()
        module_outputs[name] = {output for output, _ in blocks(directory_docs(source), "output")}
    problems = []
    for doc in docs:
        # `moved` blocks name addresses of the past and inside child modules, not references.
        for text in expressions({kind: body for kind, body in doc.items() if kind != "moved"}):
            for m in REFERENCE.finditer(text):
                kind, name, dtype, dname, module, output, rtype, rname = m.groups()
                if kind == "var" and name not in variables:
                    problems.append(f"var.{name}")
                elif kind == "local" and name not in local_names:
                    problems.append(f"local.{name}")
                elif dtype and (dtype, dname) not in data_sources:
                    problems.append(f"data.{dtype}.{dname}")
                elif module and output not in module_outputs.get(module, set()):
                    problems.append(f"module.{module}.{output}")
                elif rtype and (rtype, rname) not in declared:
                    problems.append(f"{rtype}.{rname}")
    return sorted(set(problems))


@pytest.mark.parametrize("directory", terraform_directories(), ids=directory_id)
def test_references_resolve(directory: Path) -> None:
    """Every var., local., data., module. and resource reference names something declared."""
    problems = unresolved_references(directory)
    assert not problems, f"{directory.name} refers to undeclared {problems}"


def test_reference_check_catches_typos(tmp_path: Path) -> None:
    """The reference check reports misspelt variables, locals, resources and data sources."""
    (tmp_path / "main.tf").write_text(
        'variable "real" {\n  type = string\n}\n'
        "locals {\n  ok = var.real\n}\n"
        'resource "aws_sqs_queue" "q" {\n'
        "  name   = var.missing\n"
        "  policy = local.nope\n"
        "  tags   = { a = aws_sns_topic.ghost.arn, b = data.aws_region.none.name }\n"
        "}\n",
        encoding="utf-8",
    )
    assert unresolved_references(tmp_path) == [
        "aws_sns_topic.ghost",
        "data.aws_region.none",
        "local.nope",
        "var.missing",
    ]


def test_module_calls_match_module_variables() -> None:
    """The root passes only declared module inputs and every input without a default."""
    docs = directory_docs(ROOT_DIR)
    for name, body in blocks(docs, "module"):
        module_docs = directory_docs(TF_ROOT / "modules" / name)
        declared = {var: spec for var, spec in blocks(module_docs, "variable")}
        passed = set(body) - {"source", "depends_on", "providers", "count", "for_each"}
        unknown = sorted(passed - set(declared))
        missing = sorted(
            v for v, spec in declared.items() if "default" not in spec and v not in passed
        )
        assert not unknown, f"module {name} gets undeclared inputs {unknown}"
        assert not missing, f"module {name} lacks required inputs {missing}"


# --- Environments ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_environments_hold_only_values(env: str) -> None:
    """dev, staging and prod share the root code: each env folder holds only its values."""
    directory = TF_ROOT / "envs" / env
    present = sorted(p.name for p in directory.iterdir())
    assert present == sorted(ENV_FILES), (
        f"envs/{env} must hold only {sorted(ENV_FILES)} (code belongs in root/): {present}"
    )
    stray = sorted(str(p.relative_to(TF_ROOT)) for p in (TF_ROOT / "envs").rglob("*.tf"))
    assert not stray, f"Terraform code under envs/ (move it to root/): {stray}"


def test_root_calls_the_six_modules() -> None:
    """The root configuration calls the six modules by their names, from ../modules/<name>."""
    sources = {
        name: body.get("source") for name, body in blocks(directory_docs(ROOT_DIR), "module")
    }
    assert sorted(sources) == sorted(MODULES), f"module calls: {sorted(sources)}"
    for name, source in sources.items():
        assert source == f"../modules/{name}", f"module {name} has source {source}"
        assert (ROOT_DIR / source).resolve().is_dir()


def test_environments_keep_remote_locked_state() -> None:
    """Each environment keeps encrypted S3 state under its own key, with locking."""
    root_backend = first_block(parsed(ROOT_DIR / "backend.tf")["terraform"][0], "backend")
    assert "s3" in root_backend, "root/backend.tf has no s3 backend"
    assert not root_backend["s3"].get("key"), (
        "root/backend.tf must leave the state key to envs/<env>/backend.hcl"
    )
    keys = set()
    for env in ENVS:
        s3 = parsed(TF_ROOT / "envs" / env / "backend.hcl")
        assert s3.get("encrypt") is True, f"envs/{env}/backend.hcl: state not encrypted"
        assert s3.get("use_lockfile") is True or s3.get("dynamodb_table"), (
            f"envs/{env}: no state locking"
        )
        assert s3.get("key") == f"rates/{env}/terraform.tfstate", (
            f"envs/{env}: state key {s3.get('key')} is not rates/{env}/terraform.tfstate"
        )
        assert s3.get("region"), f"envs/{env}/backend.hcl sets no region"
        keys.add(s3["key"])
    assert len(keys) == len(ENVS)


@pytest.mark.parametrize("env", ENVS)
def test_tfvars_set_exactly_the_declared_variables(env: str) -> None:
    """terraform.tfvars sets every root variable without a default and no undeclared one."""
    declared = {name: body for name, body in blocks(directory_docs(ROOT_DIR), "variable")}
    values = parsed(TF_ROOT / "envs" / env / "terraform.tfvars")
    unknown = sorted(set(values) - set(declared))
    unset = sorted(
        name for name, body in declared.items() if "default" not in body and name not in values
    )
    assert not unknown, f"envs/{env}/terraform.tfvars sets variables not in root/: {unknown}"
    assert not unset, f"envs/{env}/terraform.tfvars leaves {unset} unset"
    assert values["environment"] == env


def test_prod_is_sized_and_protected_like_prod() -> None:
    """prod is Multi-AZ Aurora with readers that scale, protected and HTTPS-only; dev and
    staging are Serverless v2 at a low minimum and sleep at night."""
    values = {env: parsed(TF_ROOT / "envs" / env / "terraform.tfvars") for env in ENVS}
    prod = values["prod"]
    assert prod["db_serverless"] is False and prod["db_deletion_protection"] is True
    assert prod["db_reader_min_count"] >= 1, "prod needs a reader in another AZ to fail over to"
    assert prod["db_reader_max_count"] > prod["db_reader_min_count"], "prod readers must scale"
    assert prod["single_nat_gateway"] is False and prod["require_https"] is True
    assert prod["scale_to_zero_out_of_hours"] is False and prod["allow_destroy"] is False
    for env in ("dev", "staging"):
        assert values[env]["db_serverless"] is True
        assert values[env]["db_min_acu"] <= 0.5
        assert values[env]["db_reader_min_count"] == values[env]["db_reader_max_count"] == 0
        assert values[env]["api_cpu"] == 256
        assert values[env]["scale_to_zero_out_of_hours"] is True
        assert values[env]["log_retention_days"] < prod["log_retention_days"]


def test_the_database_is_aurora_with_readers_that_scale() -> None:
    """An Aurora PostgreSQL cluster (no RDS instance), encrypted, private, with reader
    autoscaling on reader CPU and Serverless v2 capacity as a variable."""
    docs = directory_docs(TF_ROOT / "modules" / "database")
    found = {r.type: r for r in resources(docs, "database")}
    assert "aws_db_instance" not in found, "the database is still a single RDS instance"
    cluster = found["aws_rds_cluster"].body
    assert cluster["engine"] == "aurora-postgresql" and cluster["storage_encrypted"] is True
    assert cluster["manage_master_user_password"] is True
    assert cluster["iam_database_authentication_enabled"] is True
    assert "serverlessv2_scaling_configuration" in json.dumps(cluster)
    assert found["aws_rds_cluster_instance"].body["publicly_accessible"] is False
    target = found["aws_appautoscaling_target"].body
    assert target["scalable_dimension"] == "rds:cluster:ReadReplicaCount"
    policy = first_block(
        found["aws_appautoscaling_policy"].body, "target_tracking_scaling_policy_configuration"
    )
    metric = first_block(policy, "predefined_metric_specification")["predefined_metric_type"]
    assert metric in {"RDSReaderAverageCPUUtilization", "RDSReaderAverageDatabaseConnections"}


def test_no_secret_value_is_kept_in_state() -> None:
    """Only the AWS provider is required (no hashicorp/random), and every secret version
    Terraform writes is write-only from an ephemeral value, so state holds no secret."""
    for path in sorted(TF_ROOT.rglob("versions.tf")):
        providers = parsed(path)["terraform"][0]["required_providers"][0]
        assert set(providers) == {"aws"}, f"{path.relative_to(TF_ROOT)}: {sorted(providers)}"
    for directory in terraform_directories():
        for resource in resources(directory_docs(directory), directory.name):
            assert not resource.type.startswith("random_"), resource.address
            if resource.type == "aws_secretsmanager_secret_version":
                assert "secret_string" not in resource.body, f"{resource.address} stores its value"
                assert "ephemeral." in resource.body["secret_string_wo"], resource.address
            if resource.type in {"aws_rds_cluster", "aws_db_instance"}:
                assert "master_password" not in resource.body, resource.address


# --- Security -------------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", terraform_directories(), ids=directory_id)
def test_security_invariants_hold(directory: Path) -> None:
    """No public/unencrypted DB, SSH, open ingress past the ALB, bare bucket or ECS env secret."""
    findings = security_findings(directory_docs(directory), directory.name)
    assert not findings, "\n".join(findings)


BAD_CONFIG = """
resource "aws_db_instance" "bad" {
  publicly_accessible = true
  storage_encrypted   = false
}
resource "aws_rds_cluster" "bad" {
  engine = "aurora-postgresql"
}
resource "aws_security_group" "web" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["10.0.0.0/8"]
  }
}
resource "aws_vpc_security_group_ingress_rule" "open_db" {
  security_group_id = aws_security_group.web.id
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = "0.0.0.0/0"
}
resource "aws_security_group_rule" "everything" {
  type              = "ingress"
  security_group_id = aws_security_group.web.id
  protocol          = "-1"
  from_port         = 0
  to_port           = 0
  ipv6_cidr_blocks  = ["::/0"]
}
resource "aws_s3_bucket" "naked" {
  bucket = "naked"
}
resource "aws_s3_bucket_versioning" "naked" {
  bucket = aws_s3_bucket.naked.id
  versioning_configuration {
    status = "Suspended"
  }
}
locals {
  containers = [{ name = "api", environment = [{ name = "RATES_DB_PASSWORD", value = "hunter2" }] }]
}
resource "aws_ecs_task_definition" "from_locals" {
  container_definitions = jsonencode(local.containers)
}
resource "aws_ecs_task_definition" "inline" {
  container_definitions = jsonencode([{
    name        = "w"
    environment = concat(local.x, [{ value = "${var.token}", name = "INGEST_TOKEN" }])
  }])
}
resource "aws_instance" "bastion" {
  ami = "ami-12345678"
}
"""

GOOD_CONFIG = """
resource "aws_lb" "public" {
  security_groups = [aws_security_group.alb.id]
}
resource "aws_security_group" "alb" {
  name = "alb"
}
resource "aws_vpc_security_group_ingress_rule" "https" {
  security_group_id = aws_security_group.alb.id
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
resource "aws_vpc_security_group_ingress_rule" "app" {
  security_group_id            = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = var.port
  to_port                      = var.port
  referenced_security_group_id = aws_security_group.alb.id
}
variable "port" {
  type        = number
  description = "port"
  default     = 8000
}
resource "aws_db_instance" "ok" {
  publicly_accessible = false
  storage_encrypted   = true
}
resource "aws_s3_bucket" "ok" {
  bucket = "ok"
}
resource "aws_s3_bucket_public_access_block" "ok" {
  bucket                  = aws_s3_bucket.ok.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
resource "aws_s3_bucket_server_side_encryption_configuration" "ok" {
  bucket = aws_s3_bucket.ok.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}
resource "aws_s3_bucket_versioning" "ok" {
  bucket = aws_s3_bucket.ok.id
  versioning_configuration {
    status = "Enabled"
  }
}
locals {
  containers = [{
    name        = "api"
    environment = concat(local.common, [{ name = "RATES_DB_USER", value = "rates_api" }])
    secrets     = [{ name = "RATES_DB_PASSWORD", valueFrom = "${var.secret_arn}:password::" }]
  }]
  common = [{ name = "RATES_DB_HOST", value = "db" }]
}
resource "aws_ecs_task_definition" "ok" {
  container_definitions = jsonencode(local.containers)
}
"""


def test_security_checks_catch_a_bad_configuration() -> None:
    """Each security check flags its violation in a bad snippet and stays quiet on a good one."""
    findings = "\n".join(security_findings([parse_hcl(BAD_CONFIG)], "bad"))
    expected = [
        "aws_db_instance.bad: publicly_accessible",
        "aws_db_instance.bad: storage_encrypted",
        "aws_rds_cluster.bad: storage_encrypted",
        "aws_security_group.web: ingress includes port 22",
        "aws_vpc_security_group_ingress_rule.open_db: ingress from 0.0.0.0/0",
        "aws_security_group_rule.everything: ingress includes port 22",
        "aws_security_group_rule.everything: ingress from ::/0",
        "aws_s3_bucket.naked: needs an aws_s3_bucket_public_access_block",
        "aws_s3_bucket.naked: needs an aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket.naked: needs aws_s3_bucket_versioning",
        "RATES_DB_PASSWORD is passed in `environment`",
        "INGEST_TOKEN is passed in `environment`",
        "aws_instance.bastion: no EC2 instances",
    ]
    missed = [item for item in expected if item not in findings]
    assert not missed, f"checks missed {missed}; they reported:\n{findings}"
    assert security_findings([parse_hcl(GOOD_CONFIG)], "good") == []


def test_ecs_secrets_come_from_secrets_manager() -> None:
    """Every ECS secret is a Secrets Manager ARN plus JSON key; passwords use the key `password`."""
    docs = directory_docs(TF_ROOT / "modules" / "service")
    entries = objects_having(locals_of(docs), "name", "valueFrom")
    names = {entry["name"] for entry in entries}
    assert {
        "RATES_DB_PASSWORD",
        "RATES_INGEST_TOKENS",
        "RATES_API_DB_PASSWORD",
        "RATES_WORKER_DB_PASSWORD",
    } <= names
    for entry in entries:
        assert re.fullmatch(
            r"\$\{.*(secret_arn|secret_arns|secretsmanager_secret).*\}:[a-z]+::", entry["valueFrom"]
        ), entry
        if entry["name"].endswith("PASSWORD"):
            assert entry["valueFrom"].endswith(":password::"), entry


def test_containers_follow_the_application_contract() -> None:
    """Task commands, the API port and the Lambda image settings match what the image expects."""
    service_locals = locals_of(directory_docs(TF_ROOT / "modules" / "service"))
    containers = service_locals["containers"]
    # The image's ENTRYPOINT is `rates`; every container sets its own, so argv is explicit.
    argv = {
        kind: containers[kind][0]["entryPoint"] + containers[kind][0]["command"]
        for kind in ("api", "worker", "migrate", "import")
    }
    assert argv["api"][:5] == ["rates", "serve", "--host", "0.0.0.0", "--port"]
    assert argv["worker"] == ["rates", "worker"]
    # Post-deploy migrations wait for the pipeline's Contract step (test_pipeline_scripts).
    assert argv["migrate"] == [
        "sh",
        "-c",
        "rates db migrate --before-deploy && rates db grant-logins",
    ]
    assert argv["import"][:3] == ["rates", "db", "load"]
    assert argv["import"][3].startswith("s3://")
    ingestion = directory_docs(TF_ROOT / "modules" / "ingestion")
    functions = locals_of(ingestion)["functions"]
    assert {f["command"][0] for f in functions.values()} == {
        "rates.ingest.lambda_handler.handle",
        "rates.ingest.lambda_handler.report_queue_depth",
    }
    (lambda_fn,) = [r for r in resources(ingestion, "ingestion") if r.type == "aws_lambda_function"]
    assert lambda_fn.body["package_type"] == "Image"
    assert first_block(lambda_fn.body, "image_config")["entry_point"] == [
        "python",
        "-m",
        "awslambdaric",
    ]
    appspec = yaml.safe_load((AWS_DIR / "appspec.yaml").read_text(encoding="utf-8"))
    balancer = appspec["Resources"][0]["TargetService"]["Properties"]["LoadBalancerInfo"]
    assert balancer == {"ContainerName": "api", "ContainerPort": 8000}


def test_only_dropped_objects_trigger_the_ingest_lambda() -> None:
    """API uploads and objects dropped from outside live under different prefixes, and only
    the drop prefix sends events to the ingest Lambda (the API registers its own uploads)."""
    root_locals = locals_of(directory_docs(ROOT_DIR))
    assert root_locals["batch_prefix"] != root_locals["drop_prefix"]
    assert not root_locals["batch_prefix"].startswith(root_locals["drop_prefix"])
    assert not root_locals["drop_prefix"].startswith(root_locals["batch_prefix"])
    ingestion = directory_docs(TF_ROOT / "modules" / "ingestion")
    (notification,) = [
        r for r in resources(ingestion, "ingestion") if r.type == "aws_s3_bucket_notification"
    ]
    lambdas = notification.body["lambda_function"]
    assert [f["filter_prefix"] for f in lambdas] == ["${var.drop_prefix}"]
    api = locals_of(directory_docs(TF_ROOT / "modules" / "service"))["app_environment"]
    assert {"name": "RATES_STORAGE_S3_PREFIX", "value": "${var.batch_prefix}"} in api


def test_load_balancer_and_ecs_check_liveness_only() -> None:
    """The ALB target groups and the API container check /healthz (no database call), so a
    database failover never marks the whole fleet unhealthy."""
    network = directory_docs(TF_ROOT / "modules" / "network")
    assert variable_defaults(network)["health_check_path"] == "/healthz"
    groups = [r for r in resources(network, "network") if r.type == "aws_lb_target_group"]
    assert len(groups) == 2
    for group in groups:
        assert first_block(group.body, "health_check")["path"] == "${var.health_check_path}"
    containers = locals_of(directory_docs(TF_ROOT / "modules" / "service"))["containers"]
    command = " ".join(containers["api"][0]["healthCheck"]["command"])
    assert "/healthz" in command and "/readyz" not in command


def test_metrics_are_not_routed_by_the_public_load_balancer() -> None:
    """Every listener answers /metrics with a fixed 404 instead of forwarding it."""
    network = directory_docs(TF_ROOT / "modules" / "network")
    rules = [r for r in resources(network, "network") if r.type == "aws_lb_listener_rule"]
    blocking = [
        r
        for r in rules
        if "/metrics" in first_block(first_block(r.body, "condition"), "path_pattern")["values"]
        and first_block(r.body, "action")["type"] == "fixed-response"
    ]
    assert blocking, "no listener rule keeps /metrics off the ALB"
    (rule,) = blocking
    assert "prod" in rule.body["for_each"] and "test" in rule.body["for_each"], rule.body
    assert first_block(rule.body, "action")["fixed_response"][0]["status_code"] == "404"


def test_no_worker_is_stopped_mid_batch() -> None:
    """The worker scales on queued batches only, deploys start new workers first, stopTimeout is
    Fargate's maximum and the grace period fits inside it (protection does the rest)."""
    service = directory_docs(TF_ROOT / "modules" / "service")
    worker = locals_of(service)["containers"]["worker"][0]
    assert worker["stopTimeout"] == 120
    environment = {e["name"]: e["value"] for e in inline_objects(worker["environment"])}
    assert int(environment["RATES_WORKER_GRACE_PERIOD_S"]) < worker["stopTimeout"]
    assert "RATES_WORKER_PROTECTION_MINUTES" in environment
    found = {(r.type, r.name): r.body for r in resources(service, "service")}
    ecs_worker = found[("aws_ecs_service", "worker")]
    assert ecs_worker["deployment_minimum_healthy_percent"] == 100
    alarms = [body for (rtype, _), body in found.items() if rtype == "aws_cloudwatch_metric_alarm"]
    assert {a["metric_name"] for a in alarms} == {"IngestQueuedBatches"}
    everything = "\n".join(p.read_text() for p in TF_ROOT.rglob("*.tf"))
    assert "IngestQueueDepth" not in everything, "queued + in progress must not drive scaling"


def test_queue_metrics_and_alarms_carry_the_environment() -> None:
    """The queue metrics the Lambda publishes and the alarms on them have an Environment
    dimension, so copies in one account never scale each other's workers."""
    root = directory_docs(ROOT_DIR)
    assert locals_of(root)["metric_dimensions"] == {"Environment": "${var.environment}"}
    calls = dict(blocks(root, "module"))
    for module in ("service", "monitoring"):
        assert calls[module]["queue_metric_dimensions"] == "${local.metric_dimensions}", module
    assert calls["ingestion"]["environment"] == "${var.environment}"
    lambda_env = locals_of(directory_docs(TF_ROOT / "modules" / "ingestion"))["lambda_environment"]
    assert lambda_env["RATES_ENVIRONMENT"] == "${var.environment}"
    for module in ("service", "monitoring"):
        declared = dict(blocks(directory_docs(TF_ROOT / "modules" / module), "variable"))
        assert "default" not in declared["queue_metric_dimensions"], module


# --- Pipeline files ------------------------------------------------------------------------------


def test_pipeline_files_are_consistent() -> None:
    """Buildspecs run .ci/run first and publish what CodeDeploy reads; pipeline.sh is valid bash."""
    build = yaml.safe_load((AWS_DIR / "buildspec.yml").read_text(encoding="utf-8"))
    deploy = yaml.safe_load((AWS_DIR / "buildspec-deploy.yml").read_text(encoding="utf-8"))
    assert str(build["version"]) == str(deploy["version"]) == "0.2"
    pre_build = " ".join(build["phases"]["pre_build"]["commands"])
    assert "bash .ci/run" in pre_build
    assert set(build["artifacts"]["files"]) >= {"imageDetail.json", "taskdef.json", "appspec.yaml"}
    assert "pipeline.sh" in " ".join(deploy["phases"]["build"]["commands"])
    pipeline_vars = variable_defaults(directory_docs(TF_ROOT / "modules" / "pipeline"))
    import_spec = yaml.safe_load((AWS_DIR / "buildspec-import.yml").read_text(encoding="utf-8"))
    assert set(import_spec["artifacts"]["files"]) == set(build["artifacts"]["files"])
    for key in ("buildspec_path", "deploy_buildspec_path", "import_buildspec_path"):
        assert (REPO_ROOT / pipeline_vars[key]).is_file(), (
            f"{key} = {pipeline_vars[key]} does not exist"
        )
    script = AWS_DIR / "pipeline.sh"
    result = subprocess.run(
        ["bash", "-n", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def pipeline_resources() -> dict[tuple[str, str], dict[str, Any]]:
    docs = directory_docs(TF_ROOT / "modules" / "pipeline")
    return {(r.type, r.name): r.body for r in resources(docs, "pipeline")}


def dynamic_stages(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pipeline's dynamic stages by name, each with its for_each and its action."""
    found = {}
    for block in pipeline.get("dynamic", []):
        for kind, body in block.items():
            if kind == "stage":
                content = first_block(body, "content")
                action = first_block(content, "action")
                found[f"{content['name']}/{action['name']}"] = {
                    "for_each": body["for_each"],
                    "action": action,
                }
    return found


def test_prod_deploys_the_digest_staging_deployed_after_an_approval() -> None:
    """Staging's pipeline builds and hands its deployed digest on; prod's has no build: an S3
    source (the promotion bundle), a manual approval, an import of the same digest, then the
    same migrate, blue/green, release and contract steps."""
    values = {env: parsed(TF_ROOT / "envs" / env / "terraform.tfvars") for env in ENVS}
    assert values["staging"]["pipeline_promotes_to"] == "prod"
    assert values["staging"]["pipeline_promoted_from"] is None
    assert values["prod"]["pipeline_promoted_from"] == "staging"
    assert "github_branch" not in values["prod"], "prod builds nothing from a branch"
    assert values["dev"]["pipeline_promotes_to"] is None

    found = pipeline_resources()
    assert found[("aws_codebuild_project", "build")]["count"] == "${local.built ? 1 : 0}"
    assert found[("aws_codebuild_project", "import")]["count"] == "${local.promoted ? 1 : 0}"
    stages = dynamic_stages(found[("aws_codepipeline", "this")])
    source = stages["Source/PromotedFrom-${stage.value}"]
    assert source["for_each"] == "${local.promoted_froms}"
    assert source["action"]["provider"] == "S3"
    assert source["action"]["configuration"]["PollForSourceChanges"] == "false"
    assert source["action"]["configuration"]["S3ObjectKey"] == "${local.promotion_key}"
    approve = stages["Approve/PromoteFrom-${stage.value}"]
    assert approve["for_each"] == "${local.promoted_froms}"
    assert (approve["action"]["category"], approve["action"]["provider"]) == ("Approval", "Manual")
    imported = stages["ImportImage/CopyByDigest"]
    assert imported["action"]["output_artifacts"] == ["${local.build_artifact}"]
    assert stages["${stage.value}/TestBuildPush"]["for_each"] == '${local.built ? ["Build"] : []}'
    promote = stages["Promote/HandTo-${stage.value}"]
    assert promote["for_each"] == "${local.promotes_to}"
    assert '"promote"' in promote["action"]["configuration"]["EnvironmentVariables"]

    # In file order: nothing is deployed before the approval and the import.
    text = (TF_ROOT / "modules" / "pipeline" / "main.tf").read_text(encoding="utf-8")
    order = [
        "Source",
        "Build",
        "Approve",
        "ImportImage",
        "Migrate",
        "Deploy",
        "Release",
        "Contract",
        "Promote",
    ]
    positions = [
        text.index(f'name = "{name}"') if name != "Build" else text.index('["Build"]')
        for name in order
    ]
    assert positions == sorted(positions)
    locals_ = locals_of(directory_docs(TF_ROOT / "modules" / "pipeline"))
    assert locals_["promotion_key"] == "promotions/${var.name}.zip"


def test_promotion_permissions_reach_only_what_is_handed_over() -> None:
    """The promoted pipeline may read only the promotion object of the other environment, the
    import step pull only from its repository and push only to its own; the promoting step may
    start only the next environment's pipeline."""
    docs = directory_docs(TF_ROOT / "modules" / "pipeline")
    documents = {name: body for _, entry in blocks(docs, "data") for name, body in entry.items()}

    def statements(policy: str) -> dict[str, dict[str, Any]]:
        found = {s["sid"]: s for s in documents[policy].get("statement", [])}
        for dynamic in documents[policy].get("dynamic", []):
            content = first_block(dynamic["statement"], "content")
            found[content["sid"]] = content
        return found

    pipeline = statements("pipeline")
    assert pipeline["PromotionObject"]["resources"] == [
        "arn:${local.partition}:s3:::${local.promoted_from_bucket}/${local.promotion_key}"
    ]
    assert pipeline["PromotionObject"]["actions"] == ["s3:GetObject", "s3:GetObjectVersion"]
    key_condition = first_block(pipeline["PromotionKey"], "condition")
    assert key_condition["variable"] == "kms:ResourceAliases"
    importer = statements("import")
    assert importer["PullPromotedImage"]["resources"] == ["${local.promoted_from_repository_arn}"]
    assert "ecr:PutImage" not in importer["PullPromotedImage"]["actions"]
    assert importer["PushToOwnRepository"]["resources"] == ["${var.repository_arn}"]
    deploy = statements("deploy")
    assert deploy["StartNextPipeline"]["actions"] == ["codepipeline:StartPipelineExecution"]


def test_blue_green_has_a_pre_traffic_hook_that_reports_its_verdict() -> None:
    """appspec.yaml names the hook for AfterAllowTestTraffic; Terraform deploys that function
    with the test listener's URL, lets CodeDeploy invoke it and lets it report only to this
    deployment group; the build and import steps fill in its name."""
    appspec = yaml.safe_load((AWS_DIR / "appspec.yaml").read_text(encoding="utf-8"))
    assert appspec["Hooks"] == [{"AfterAllowTestTraffic": "<PRE_TRAFFIC_HOOK>"}]
    found = pipeline_resources()
    hook = found[("aws_lambda_function", "pre_traffic")]
    assert hook["function_name"] == "${local.pre_traffic_function_name}"
    assert hook["handler"] == "pre_traffic.handler"
    variables = first_block(hook, "environment")["variables"]
    assert variables["TEST_LISTENER_URL"] == "${var.test_listener_url}"
    assert variables["RATES_QUERY"] == "${var.smoke_rates_query}"
    assert (AWS_DIR / "hooks" / "pre_traffic.py").is_file()
    for project in ("build", "import"):
        env_vars = first_block(found[("aws_codebuild_project", project)], "environment")
        names = {v["name"]: v["value"] for v in env_vars["environment_variable"]}
        assert names["PRE_TRAFFIC_HOOK"] == "${local.pre_traffic_function_name}"
    docs = directory_docs(TF_ROOT / "modules" / "pipeline")
    documents = {name: body for _, entry in blocks(docs, "data") for name, body in entry.items()}
    (invoke,) = documents["codedeploy_hook"]["statement"]
    assert invoke["actions"] == ["lambda:InvokeFunction"]
    assert invoke["resources"] == ["${aws_lambda_function.pre_traffic.arn}"]
    report = {s["sid"]: s for s in documents["pre_traffic"]["statement"]}["ReportVerdict"]
    assert report["actions"] == ["codedeploy:PutLifecycleEventHookExecutionStatus"]
    assert report["resources"] == ["${local.deployment_group_arn}"]
    root = dict(blocks(directory_docs(ROOT_DIR), "module"))["pipeline"]
    assert root["test_listener_url"] == "${module.network.test_listener_url}"
    assert root["hook_package_path"].endswith("/aws/hooks/dist/pre_traffic.zip")


# --- External tools ------------------------------------------------------------------------------


def checkov_binary() -> str:
    """CHECKOV_BIN, else .venv-checkov/bin/checkov in the repository, else checkov on PATH."""
    configured = os.environ.get("CHECKOV_BIN")
    if configured:
        assert os.access(configured, os.X_OK), (
            f"CHECKOV_BIN={configured} is not executable. {CHECKOV_INSTALL_HINT}"
        )
        return configured
    local = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
    if os.access(local, os.X_OK):
        return str(local)
    on_path = shutil.which("checkov")
    if on_path:
        return on_path
    pytest.fail(CHECKOV_INSTALL_HINT)


def test_checkov_reports_no_failed_check() -> None:
    """checkov's Terraform checks pass; each deliberate exception is an explained inline skip."""
    result = subprocess.run(
        [
            checkov_binary(),
            "--directory",
            str(TF_ROOT),
            "--framework",
            "terraform",
            "--compact",
            "--quiet",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=600,
    )
    assert result.returncode in (0, 1), (
        f"checkov crashed ({result.returncode}):\n{result.stderr[-3000:]}"
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summaries = [r["summary"] for r in reports]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c.get('check_name', '')}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert sum(s["failed"] for s in summaries) == 0
    assert sum(s["parsing_errors"] for s in summaries) == 0
    assert sum(s["passed"] for s in summaries) > 100, (
        f"checkov scanned suspiciously little: {summaries}"
    )


def test_checkov_skips_are_justified() -> None:
    """Every inline checkov skip names a check and gives a reason of a few words."""
    skips = [
        (path, line.strip())
        for path in tf_files()
        for line in path.read_text(encoding="utf-8").splitlines()
        if "checkov:skip" in line
    ]
    assert skips, "expected the documented skips to be found"
    for path, line in skips:
        match = re.search(r"#checkov:skip=(CKV2?_AWS_\d+):(.+)$", line)
        assert match, f"{path}: malformed skip {line!r}"
        assert len(match.group(2).split()) >= 6, (
            f"{path}: skip {match.group(1)} needs a real reason"
        )


def terraform_env() -> dict[str, str]:
    """Environment for terraform runs: no update checks, no prompts."""
    return {**os.environ, "CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}


def test_terraform_files_are_formatted() -> None:
    """`terraform fmt -check` finds nothing to reformat (needs no network)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TF_ROOT)],
        capture_output=True,
        text=True,
        check=False,
        env=terraform_env(),
        timeout=120,
    )
    assert result.returncode == 0, (
        f"run `terraform fmt -recursive deploy/terraform`:\n{result.stdout}{result.stderr}"
    )


def provider_mirror() -> Path | None:
    """The folder holding a filesystem mirror of the AWS provider (its registry.terraform.io/
    tree): TF_PLUGIN_MIRROR if set, else the first one found in the usual places or near the
    top of the file system (the machine image ships one)."""
    configured = os.environ.get("TF_PLUGIN_MIRROR")
    if configured:
        assert (Path(configured) / "registry.terraform.io").is_dir(), (
            f"TF_PLUGIN_MIRROR={configured} holds no registry.terraform.io/ tree"
        )
        return Path(configured)
    usual = [
        Path.home() / ".terraform.d" / "plugins",
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
    ]
    for folder in usual:
        if (folder / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return folder
    found = subprocess.run(
        ["find", "/", "-maxdepth", "4", "-name", "registry.terraform.io", "-type", "d"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.split()
    for tree in found:
        if (Path(tree) / "hashicorp" / "aws").is_dir():
            return Path(tree).parent
    return None


@pytest.fixture(scope="module")
def terraform_tools() -> tuple[str, Path | None]:
    """terraform and the provider mirror; skips only when neither exists (says which)."""
    terraform = shutil.which("terraform")
    mirror = provider_mirror()
    if terraform is None and mirror is None:
        pytest.skip(
            "neither terraform nor a filesystem mirror of the AWS provider exists on this"
            " machine (set TF_PLUGIN_MIRROR to the folder holding registry.terraform.io/)"
        )
    assert terraform is not None, f"the provider mirror {mirror} exists but terraform does not"
    return terraform, mirror


@pytest.fixture(scope="module")
def terraform_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/terraform: init writes .terraform/ and lock files that do not belong
    in the tree."""
    copy = tmp_path_factory.mktemp("terraform") / "terraform"
    shutil.copytree(
        TF_ROOT, copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl")
    )
    return copy


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("directory", terraform_directories(), ids=directory_id)
def test_terraform_validate(
    directory: Path, terraform_tools: tuple[str, Path | None], terraform_copy: Path
) -> None:
    """`terraform init -backend=false` from the provider mirror (no network) and `terraform
    validate` pass for the root configuration and for every module on its own."""
    terraform, mirror = terraform_tools
    workdir = terraform_copy / directory.relative_to(TF_ROOT)
    plugins = [f"-plugin-dir={mirror}"] if mirror is not None else []
    init = subprocess.run(
        [terraform, "init", "-backend=false", "-input=false", "-no-color", *plugins],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
        env=terraform_env(),
        timeout=900,
    )
    assert init.returncode == 0, f"terraform init failed:\n{init.stdout}{init.stderr}"
    validate = subprocess.run(
        [terraform, "validate", "-no-color"],
        capture_output=True,
        text=True,
        check=False,
        cwd=workdir,
        env=terraform_env(),
        timeout=300,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_arns_take_the_partition_from_aws_partition() -> None:
    """No ARN is spelled "arn:aws:": the modules must also work in aws-cn and aws-us-gov."""
    spelled = [
        f"{path.relative_to(TF_ROOT)}:{number}"
        for path in sorted(TF_ROOT.rglob("*.tf"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "arn:aws:" in line
    ]
    assert spelled == []


def cron_minute_of_day(expression: str) -> tuple[int, int]:
    """(first, last) minute of the day a weekday `cron(M H ? * MON-FRI *)` fires; H may be a
    range and M may be `*`."""
    match = re.fullmatch(r"cron\((\*|\d+) (\d+)(?:-(\d+))? \? \* MON-FRI \*\)", expression)
    assert match, f"not a weekday cron with fixed hours: {expression}"
    minute, first_hour, last_hour = match.groups()
    first_minute, last_minute = (0, 59) if minute == "*" else (int(minute), int(minute))
    return (
        int(first_hour) * 60 + first_minute,
        int(last_hour or first_hour) * 60 + last_minute,
    )


def test_non_production_databases_stop_at_night_and_on_weekends() -> None:
    """Where enabled (dev and staging, not prod), EventBridge Scheduler stops the Aurora cluster
    out of hours and starts it on weekday mornings, with a role allowed only those two calls on
    that cluster."""
    values = {env: parsed(TF_ROOT / "envs" / env / "terraform.tfvars") for env in ENVS}
    assert values["prod"]["db_stop_out_of_hours"] is False
    assert values["dev"]["db_stop_out_of_hours"] is True
    assert values["staging"]["db_stop_out_of_hours"] is True

    docs = directory_docs(TF_ROOT / "modules" / "database")
    found = {(r.type, r.name): r.body for r in resources(docs, "database")}
    schedule = found[("aws_scheduler_schedule", "db")]
    assert "var.stop_out_of_hours" in schedule["for_each"]
    actions = dict(
        re.findall(r"(stop|start)\s*=\s*\{[^}]*action\s*=\s*\"(\w+)\"", schedule["for_each"])
    )
    assert actions == {"stop": "stopDBCluster", "start": "startDBCluster"}
    target = first_block(schedule, "target")
    assert target["arn"].endswith(":scheduler:::aws-sdk:rds:${each.value.action}")
    assert "aws_rds_cluster.this.cluster_identifier" in target["input"]
    assert "DbClusterIdentifier" in target["input"]
    assert schedule["schedule_expression_timezone"] == "${var.schedule_timezone}"

    policy = found.get(("aws_iam_role_policy", "scheduler"))
    assert policy is not None
    (statement,) = [
        s
        for _, body in blocks(docs, "data")
        for name, doc in body.items()
        if name == "scheduler"
        for s in doc.get("statement", [])
    ]
    assert sorted(statement["actions"]) == ["rds:StartDBCluster", "rds:StopDBCluster"]
    assert statement["resources"] == ["${aws_rds_cluster.this.arn}"]


def test_database_stop_window_respects_services_and_protected_batches() -> None:
    """The database stops only after the services scaled to zero and a protected batch can have
    ended, starts before they return, and the queue-depth reporter runs only while it is up."""
    root = directory_docs(ROOT_DIR)
    local_values = locals_of(root)
    calls = dict(blocks(root, "module"))
    assert calls["database"]["stop_out_of_hours"] == "${var.db_stop_out_of_hours}"
    assert calls["database"]["stop_cron"] == "${local.db_stop}"
    assert calls["database"]["start_cron"] == "${local.db_start}"
    assert calls["service"]["business_hours_end_cron"] == "${local.business_hours_end}"
    assert calls["service"]["business_hours_start_cron"] == "${local.business_hours_start}"
    assert calls["ingestion"]["queue_depth_schedule"] == "${local.queue_depth_schedule}"
    monitoring = calls["monitoring"]["queue_metrics_pause_out_of_hours"]
    assert monitoring == "${var.db_stop_out_of_hours}"

    protection_min = variable_defaults(directory_docs(TF_ROOT / "modules" / "service"))[
        "worker_protection_minutes"
    ]
    services_on, _ = cron_minute_of_day(local_values["business_hours_start"])
    services_off, _ = cron_minute_of_day(local_values["business_hours_end"])
    db_start, _ = cron_minute_of_day(local_values["db_start"])
    db_stop, _ = cron_minute_of_day(local_values["db_stop"])
    assert db_stop >= services_off + protection_min, "the database stops under a protected batch"
    assert db_start < services_on, "the services come back before the database"

    choice = re.fullmatch(
        r'\$\{var\.db_stop_out_of_hours \? "(.+)" : "(.+)"\}', local_values["queue_depth_schedule"]
    )
    assert choice, local_values["queue_depth_schedule"]
    sleeping, awake = choice.groups()
    assert awake == "rate(1 minute)"
    first, last = cron_minute_of_day(sleeping)
    assert db_start < first and last < db_stop, "the reporter runs while the database is stopped"


def test_cron_reader_understands_hour_ranges() -> None:
    """The cron helper gives the first and last minute a schedule fires in a day."""
    assert cron_minute_of_day("cron(0 22 ? * MON-FRI *)") == (1320, 1320)
    assert cron_minute_of_day("cron(30 6 ? * MON-FRI *)") == (390, 390)
    assert cron_minute_of_day("cron(* 7-21 ? * MON-FRI *)") == (420, 21 * 60 + 59)
