"""docs/security.md names, for each refusal, the test that shows it (`tests/...py::test_name`): each must exist, so
a test renamed or removed cannot leave the page claiming a proof it no longer has."""

from __future__ import annotations

import ast
import re

from tests.docs.test_architecture_doc import ROOT, code_spans

DOC = ROOT / "docs" / "security.md"
_TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def references() -> list[tuple[str, str]]:
    """Every (file, test) the doc's code spans name."""
    return [(m[1], m[2]) for span in code_spans(DOC.read_text()) if (m := _TEST_REF.fullmatch(span))]


def _defined_tests(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_doc_names_the_tests_of_every_interface() -> None:
    files = {path for path, _ in references()}
    assert len(references()) >= 40
    for folder in ("api/admin", "api/s3", "api/webhdfs", "api/test_peer.py", "cluster", "test_secrets.py"):
        assert any(f"tests/cache_service/{folder}" in path for path in files), folder


def test_every_test_the_doc_names_exists() -> None:
    missing = [
        f"{path}::{name}"
        for path, name in references()
        if not (ROOT / path).is_file() or name not in _defined_tests(path)
    ]
    assert missing == []
