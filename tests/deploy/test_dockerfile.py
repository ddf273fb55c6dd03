"""deploy/docker/Dockerfile builds a small, non-root, cache-friendly image without secrets.

No Docker engine runs here, so the Dockerfile is read as text: instructions with their `\\`
continuations joined, split into stages at each FROM.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
SECRET_LIKE = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_instructions(text: str) -> list[Instruction]:
    """Instructions in order; comment lines dropped, `\\` continuations joined."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # comments may sit inside a continuation too
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def parse_stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the build stages."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in parse_instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=_expand(words[0], global_args), name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
        elif instruction.keyword == "ARG":
            key, _, default = instruction.arguments.partition("=")
            global_args[key.strip()] = default.strip().strip('"')
    return global_args, stages


def _expand(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables[m[1] or m[2]], value)


def _exec_form(arguments: str) -> list[str]:
    parsed = json.loads(arguments)
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def _declared_names(instruction: Instruction) -> list[str]:
    """Variable names of an ENV (`A=1 B=2` or legacy `A 1`) or ARG instruction."""
    words = shlex.split(instruction.arguments)
    if instruction.keyword == "ENV" and words and "=" not in words[0]:
        return [words[0]]
    return [word.partition("=")[0] for word in words]


def _env(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.arguments):
            key, _, value = word.partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_stages(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def test_parser_joins_continuations_and_skips_comments() -> None:
    """The line parser joins `\\` continuations, even across comment lines, into one instruction."""
    text = "FROM a AS b\n# note\nRUN one \\\n    # inner\n    two\nUSER 1\n"
    assert parse_instructions(text) == [
        Instruction("FROM", "a AS b"),
        Instruction("RUN", "one two"),
        Instruction("USER", "1"),
    ]


def test_build_has_named_builder_and_runtime_stages(stages: list[Stage]) -> None:
    """The build is multi-stage: at least two `FROM ... AS name` stages."""
    assert len(stages) >= 2
    assert all(stage.name for stage in stages)


def test_runtime_is_a_pinned_slim_python_matching_the_builder(
    stages: list[Stage], runtime: Stage
) -> None:
    """The final stage runs on python:3.11-slim, pinned by a sha256 digest, the builder's base."""
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?@sha256:[0-9a-f]{64}", runtime.base), runtime.base
    assert stages[0].base == runtime.base
    assert any("/opt/venv" in copy.arguments for copy in runtime.all("COPY"))


def test_every_from_line_pins_a_digest() -> None:
    """Each FROM names its base by @sha256: digest (directly or through an ARG default), so a
    moved tag never changes what is built."""
    global_args, stages = parse_stages(DOCKERFILE.read_text())
    assert stages
    for stage in stages:
        assert re.search(r"@sha256:[0-9a-f]{64}$", stage.base), stage.base
    assert global_args["PYTHON_IMAGE"].count("@sha256:") == 1


def test_pin_script_rewrites_the_pinned_line() -> None:
    """scripts/pin-base-image edits the very ARG line the FROM lines use."""
    script = (REPO_ROOT / "scripts" / "pin-base-image").read_text()
    assert "s|^ARG PYTHON_IMAGE=" in script
    assert re.search(r"^ARG PYTHON_IMAGE=\S+@sha256:", DOCKERFILE.read_text(), re.MULTILINE)


def test_dependencies_come_only_from_hashed_lock_files(stages: list[Stage]) -> None:
    """Every pip install either reads a requirements/ lock file in --require-hashes mode, wheels
    only, or installs the project's own wheel with --no-deps: nothing unlocked is downloaded."""
    installs = [
        command.strip()
        for stage in stages
        for run in stage.all("RUN")
        for command in run.arguments.split("&&")
        if re.search(r"\bpip (install|wheel)\b", command)
    ]
    assert installs
    for command in installs:
        from_lock = re.search(
            r"--require-hashes --only-binary=:all: -r requirements/\w+\.txt$", command
        )
        own_project = "--no-deps" in command and "-r " not in command
        assert from_lock or own_project, command
    locks = {m for c in installs for m in re.findall(r"requirements/\w+\.txt", c)}
    assert locks == {"requirements/image.txt", "requirements/build.txt"}
    assert all((REPO_ROOT / lock).exists() for lock in locks)


def test_image_labels_carry_the_commit(runtime: Stage) -> None:
    """The runtime stage labels the image with the commit given as build arg REVISION, which the
    pipeline's build sets from the source revision."""
    labels = " ".join(label.arguments for label in runtime.all("LABEL"))
    assert 'org.opencontainers.image.revision="${REVISION}"' in labels
    assert any(a.arguments.startswith("REVISION") for a in runtime.all("ARG"))
    buildspec = (REPO_ROOT / "deploy" / "aws" / "buildspec.yml").read_text()
    assert '--build-arg REVISION="$CODEBUILD_RESOLVED_SOURCE_VERSION"' in buildspec


def test_runtime_runs_as_a_non_root_user(runtime: Stage) -> None:
    """The final stage's last USER is uid 10001, never root or 0."""
    users = runtime.all("USER")
    assert users, "the final stage has no USER"
    user = users[-1].arguments.split(":")[0]
    assert user not in {"root", "0"}
    assert user == "10001" or "--uid 10001" in " ".join(r.arguments for r in runtime.all("RUN"))


def test_data_dir_is_writable_by_the_runtime_user(runtime: Stage) -> None:
    """RATES_DATA_DIR, where the API spools uploads, is a folder created for uid 10001."""
    data_dir = _env(runtime)["RATES_DATA_DIR"]
    runs = " ".join(r.arguments for r in runtime.all("RUN"))
    assert re.search(rf"install -d -o (rates|10001) -g (rates|10001) .*{re.escape(data_dir)}", runs)


def test_healthcheck_probes_healthz_without_curl(runtime: Stage) -> None:
    """HEALTHCHECK hits /healthz with python's urllib (slim images have no curl)."""
    (check,) = runtime.all("HEALTHCHECK")
    assert "/healthz" in check.arguments
    assert "urllib" in check.arguments
    assert not re.search(r"\b(curl|wget)\b", check.arguments)


def test_dependencies_are_installed_before_the_source_is_copied(stages: list[Stage]) -> None:
    """Dependencies get their own layer: installed before `COPY src`, the project after with
    --no-deps, so a source edit does not reinstall them."""
    builder = next(s for s in stages if any("src" in c.arguments.split() for c in s.all("COPY")))
    keywords = [(i.keyword, i.arguments) for i in builder.instructions]
    copy_src = next(n for n, (k, a) in enumerate(keywords) if k == "COPY" and "src" in a.split())
    installs = [n for n, (k, a) in enumerate(keywords) if k == "RUN" and "pip install" in a]
    assert installs and installs[0] < copy_src
    for keyword, arguments in keywords[: installs[0]]:
        if keyword == "COPY":
            assert arguments.split()[:-1] == ["pyproject.toml"] or "src" not in arguments
            assert not arguments.startswith(". ")
    project_install = keywords[installs[-1]][1]
    assert installs[-1] > copy_src and "--no-deps" in project_install


def test_lambda_runtime_client_is_installed() -> None:
    """awslambdaric is locked into the image's requirements, so the same image serves
    `python -m awslambdaric ...`."""
    assert re.search(
        r"^awslambdaric==", (REPO_ROOT / "requirements" / "image.txt").read_text(), re.M
    )


def test_no_secret_like_build_args_or_environment() -> None:
    """No ENV or ARG is named like a password, secret, token or key."""
    offending = [
        name
        for instruction in parse_instructions(DOCKERFILE.read_text())
        if instruction.keyword in {"ENV", "ARG"}
        for name in _declared_names(instruction)
        if SECRET_LIKE.search(name)
    ]
    assert offending == []


def test_runtime_defaults_serve_the_api_with_json_logs(runtime: Stage) -> None:
    """The image runs `rates serve` on 0.0.0.0 with JSON logs and exposes 8000 and 9101."""
    env = _env(runtime)
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["RATES_HOST"] == "0.0.0.0"
    assert env["RATES_LOG_FORMAT"] == "json"
    assert _exec_form(runtime.all("ENTRYPOINT")[-1].arguments) == ["rates"]
    assert _exec_form(runtime.all("CMD")[-1].arguments) == ["serve"]
    exposed = {port for e in runtime.all("EXPOSE") for port in e.arguments.split()}
    assert {"8000", "9101"} <= exposed


def _ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins, `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, f"{body}/*"):
            ignored = not negated
    return ignored


@pytest.mark.parametrize("path", [".git", ".venv", ".venv-checkov", ".rates", ".secrets"])
def test_dockerignore_keeps_local_state_out_of_the_context(path: str) -> None:
    """.dockerignore excludes version control, virtualenvs, local data and secret files."""
    assert _ignored(path, _ignore_patterns())


def test_dockerignore_keeps_what_the_build_copies(stages: list[Stage]) -> None:
    """Every path the Dockerfile copies from the context survives .dockerignore."""
    patterns = _ignore_patterns()
    sources = [
        source
        for stage in stages
        for copy in stage.all("COPY")
        if "--from=" not in copy.arguments
        for source in copy.arguments.split()[:-1]
        if not source.startswith("--")
    ]
    assert {"pyproject.toml", "README.md", "src"} <= set(sources)
    assert [s for s in sources if _ignored(s, patterns)] == []
