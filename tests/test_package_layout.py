"""The package layout keeps its promises: each way out of elkbuild has one home.

Every external action goes through an Executor, so only the executor backends may
touch subprocess, paramiko's channels and SFTP, or the Docker SDK; ELF files are
read in one module, and the bundle layout is spelled in one type. These greps
keep it that way as the code grows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "elkbuild"
TASKS = REPO / "tasks"


def python_files(*roots: Path) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*.py"))


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered lines without their `#` comments (docstrings may still name things)."""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        lines.append((number, line.split("#", 1)[0] if "#" in line else line))
    return lines


def offenders(pattern: str, allowed: set[str], *roots: Path) -> list[str]:
    """`file:line: text` for every match of `pattern` outside the `allowed` files
    (paths relative to the repository; a trailing '/' allows a whole folder)."""
    regex = re.compile(pattern)
    found = []
    for path in python_files(*roots):
        name = path.relative_to(REPO).as_posix()
        if name in allowed or any(name.startswith(a) for a in allowed if a.endswith("/")):
            continue
        for number, line in code_lines(path):
            if regex.search(line):
                found.append(f"{name}:{number}: {line.strip()}")
    return found


def test_processes_are_started_by_the_local_executor_only() -> None:
    assert offenders(r"^\s*(import|from)\s+subprocess\b|\bsubprocess\.\w",
                     {"elkbuild/executor.py"}, PACKAGE, TASKS) == []


def test_ssh_channels_sftp_and_scp_stay_in_the_board_ssh_modules() -> None:
    pattern = (r"\.(exec_command|open_session|open_channel|open_sftp|invoke_shell)\(|"
               r"\bsftp\.\w|\bSCPClient\b|^\s*(import|from)\s+scp\b")
    assert offenders(pattern, {"elkbuild/board/"}, PACKAGE, TASKS) == []


def test_the_docker_sdk_is_called_from_one_module() -> None:
    pattern = r"^\s*(import|from)\s+(docker|requests)(\.|\s|$)"
    assert offenders(pattern, {"elkbuild/docker/api.py"}, PACKAGE, TASKS) == []


def test_elf_files_are_read_in_elf_py_only() -> None:
    assert offenders(r"^\s*(import|from)\s+elftools\b", {"elkbuild/elf.py"}, PACKAGE, TASKS) == []


def test_the_bundle_layout_is_spelled_in_one_type() -> None:
    assert offenders(r"Contents/", {"elkbuild/bundle/layout.py"}, PACKAGE, TASKS) == []


def test_missing_programs_are_found_by_require_only() -> None:
    assert offenders(r"\bshutil\.which\b|^\s*from\s+shutil\s+import.*\bwhich\b",
                     {"elkbuild/executor.py"}, PACKAGE, TASKS) == []


def test_no_task_module_hides_a_module_the_package_imports() -> None:
    """invoke puts tasks/ on sys.path: a tasks/docker.py would be `import docker`."""
    imported = set()
    for path in python_files(PACKAGE):
        for _, line in code_lines(path):
            match = re.match(r"\s*(?:import|from)\s+(\w+)", line)
            if match:
                imported.add(match.group(1))
    assert sorted({path.stem for path in TASKS.glob("*.py")} & imported) == []


# Library code takes its executors from the task that runs it (dependency
# injection): a LocalExecutor made deep inside would ignore --dry-run and keep
# its commands out of the caller's history. The one exception is an executor
# implementation composing another: a container executor given no host runs its
# engine commands locally under its own dry-run flag and history.
LOCAL_EXECUTOR_MAKERS: set[str] = {"elkbuild/docker/container.py"}


def test_library_code_is_given_its_local_executor() -> None:
    assert offenders(r"(?<!class )\bLocalExecutor\(", LOCAL_EXECUTOR_MAKERS, PACKAGE) == []


@pytest.mark.parametrize("pattern", [r"\bLocalExecutor\(", r"\bshutil\.which\b"])
def test_the_greps_find_what_they_look_for(pattern: str) -> None:
    """A pattern that matches nothing anywhere would pass for the wrong reason."""
    assert offenders(pattern, set(), PACKAGE, TASKS, REPO / "tests")
