"""docs/architecture.md names only what exists, and the documentation links nowhere outside the repository.

Names. The test reads every inline code span (`...`) of docs/architecture.md outside fenced code blocks (the diagram)
and checks the spans of these shapes; any other span (a config key, an HTTP path, a command line) is left alone:

1. A repository path, written from the repository root: ends with "/" or with one of ``PATH_SUFFIXES``, has no
   space and no "://", and does not start with "/" or ".". It must exist: `cache_service/namespace/reads.py`,
   `infra/demo/`, `pyproject.toml` (a bare `reads.py` is checked as a file at the root, so write whole paths).
2. A dotted module path: lowercase dotted identifiers whose first part is a top-level package or module of the
   repository: `cache_service.namespace.reads`, `cache_service.api.connection.serve`. The longest prefix that is a
   module (or package) must exist, and what follows must be defined in it.
3. A qualified name: a CamelCase identifier, then optionally dotted attributes: `ObjectReader`, `PageStore.read`.
   Some class of that name in the repository must define each attribute in turn. Python's built-in names
   (`FileNotFoundError`) count as defined.
4. A call: an identifier followed by "()": `stream_body()`. It must be a function or method defined somewhere in the
   repository. Shapes 2 and 3 may end in "()" too.

"Defined" is read from the source with ``ast``; nothing is imported. A module defines its top-level functions,
classes and assignments, and the names it imports from a repository module (followed there). A class defines its
methods (properties too), its class-level assignments, the ``self.x`` its methods assign, and what its repository
base classes define. Names the repository does not define (S3's GetObject, Hadoop's classes) are written in the
doc as plain text, not as code.

Coverage. Every top-level folder and every package of ``cache_service`` and ``lakecache_airflow`` is named in the doc
(as a path span), so a package added later without a word in the doc fails here.

Links. Every Markdown link target ([text](target), [id]: target, <scheme:...>, href=/src=) of docs/**/*.md that is not
a web URL must resolve to an existing file or folder inside the repository (no ``../shared``, no absolute path, no
``file:``); docs/architecture.md also carries no web URL other than localhost ones.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SOURCE_ROOTS = (ROOT, ROOT / "plugins")  # plugins/ holds the importable lakecache_airflow package
PATH_SUFFIXES = (".py", ".md", ".toml", ".yml")
TOP_LEVEL_FOLDERS = ("cache_service", "plugins", "dags", "spark_jobs", "infra", "bench", "tests", "docs")
PACKAGES_TO_COVER = (ROOT / "cache_service", ROOT / "plugins" / "lakecache_airflow")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
FEWEST_NAMES = 150  # the doc names far more; fewer checked means the spans stopped being recognised

_FENCE = re.compile(r"^ *(```|~~~).*?^ *\1[^\n]*$", re.M | re.S)
_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"[a-z_][a-z0-9_]*(?:\.{_IDENT})+")
_QUALIFIED = re.compile(rf"_?[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*(?:\.{_IDENT})*")
_CALL = re.compile(rf"{_IDENT}\(\)")
_SKIPPED_DIRS = frozenset({"__pycache__", "build", "dist", "node_modules"})


# --- the doc's code spans -------------------------------------------------------------------------------------------


def prose(text: str) -> str:
    """``text`` without its fenced code blocks."""
    return _FENCE.sub("", text)


def code_spans(text: str) -> list[str]:
    """The inline code spans of ``text`` outside fenced code blocks, stripped."""
    return [m.group(2).strip() for m in _SPAN.finditer(prose(text))]


def is_repo_path(span: str) -> bool:
    """Shape 1: a path inside the repository."""
    return (
        span.endswith(("/", *PATH_SUFFIXES))
        and not any(c.isspace() for c in span)
        and "://" not in span
        and not span.startswith(("/", "."))
    )


@dataclass(frozen=True)
class Spans:
    """The doc's spans by shape."""

    paths: list[str] = field(default_factory=list)
    dotted: list[str] = field(default_factory=list)
    qualified: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many spans are checked."""
        return len(self.paths) + len(self.dotted) + len(self.qualified) + len(self.calls)


def classify(spans: list[str], top_level: frozenset[str]) -> Spans:
    """Sort the spans into the shapes the test checks (duplicates dropped); the rest are not checked."""
    found = Spans()
    for span in dict.fromkeys(spans):
        name = span.removesuffix("()")
        if is_repo_path(span):
            found.paths.append(span)
        elif _DOTTED.fullmatch(name) and name.split(".")[0] in top_level:
            found.dotted.append(name)
        elif _QUALIFIED.fullmatch(name):
            found.qualified.append(name)
        elif _CALL.fullmatch(span):
            found.calls.append(name)
    return found


# --- what the repository defines, read with ast ---------------------------------------------------------------------


@dataclass
class Index:
    """Modules, classes and functions of the repository's Python files."""

    modules: dict[str, ast.Module] = field(default_factory=dict)
    packages: set[str] = field(default_factory=set)  # folders holding Python, importable or not
    classes: dict[str, list[ast.ClassDef]] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)

    @property
    def top_level(self) -> frozenset[str]:
        """First parts of every module and package name."""
        return frozenset(name.split(".")[0] for name in (*self.modules, *self.packages))


def _python_files() -> Iterator[Path]:
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts[:-1]
        if any(p.startswith(".") or p in _SKIPPED_DIRS or p.endswith(".egg-info") for p in parts):
            continue
        yield path


def _module_names(path: Path) -> Iterator[str]:
    for source_root in SOURCE_ROOTS:
        if source_root in path.parents:
            parts = path.relative_to(source_root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and all(p.isidentifier() for p in parts):
                yield ".".join(parts)


@cache
def repository() -> Index:
    """The index of every Python file of the repository (parsed once per session)."""
    index = Index()
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for name in _module_names(path):
            index.modules[name] = tree
            parts = name.split(".")
            index.packages.update(".".join(parts[:i]) for i in range(1, len(parts)))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                index.classes.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                index.functions.add(node.name)
    return index


def _targets(node: ast.stmt) -> list[ast.expr]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, ast.AnnAssign | ast.AugAssign):
        return [node.target]
    return []


def class_members(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """What ``cls`` itself defines: methods, nested classes, class-level names, and ``self.x`` set in its methods."""
    members: dict[str, ast.AST] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            members[node.name] = node
        for target in _targets(node):
            if isinstance(target, ast.Name):
                members[target.id] = target
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.stmt):
                    for target in _targets(inner):
                        if (
                            isinstance(target, ast.Attribute)
                            and isinstance(target.value, ast.Name)
                            and target.value.id == "self"
                        ):
                            members.setdefault(target.attr, target)
    return members


def _base_names(cls: ast.ClassDef) -> list[str]:
    names = []
    for base in cls.bases:
        node = base.value if isinstance(base, ast.Subscript) else base  # Generic[K], Protocol[K]
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
    return names


def class_defines(index: Index, cls: ast.ClassDef, attrs: list[str], seen: frozenset[str] = frozenset()) -> bool:
    """True when ``cls`` (or one of its repository bases) defines ``attrs[0]``, and so on down nested classes."""
    if not attrs:
        return True
    member = class_members(cls).get(attrs[0])
    if member is not None:
        if len(attrs) == 1:
            return True
        return isinstance(member, ast.ClassDef) and class_defines(index, member, attrs[1:])
    for base in _base_names(cls):
        if base not in seen and any(
            class_defines(index, node, attrs, seen | {cls.name}) for node in index.classes.get(base, [])
        ):
            return True
    return False


def qualified_defined(index: Index, name: str) -> bool:
    """Shape 3: some class ``Name`` defines the attributes that follow it (or ``Name`` is a builtin)."""
    first, *attrs = name.split(".")
    if not attrs and hasattr(builtins, first):
        return True
    return any(class_defines(index, node, attrs) for node in index.classes.get(first, []))


def module_defines(index: Index, module: str, names: list[str], depth: int = 0) -> bool:
    """True when module ``module`` defines ``names[0]`` (then the class or re-export it names defines the rest)."""
    if not names:
        return True
    if depth > 10:
        return False
    submodule = f"{module}.{names[0]}"
    if submodule in index.modules or submodule in index.packages:
        return dotted_defined(index, submodule + "".join(f".{n}" for n in names[1:]), depth + 1)
    tree = index.modules.get(module)
    if tree is None:
        return False
    first, rest = names[0], names[1:]
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == first:
            return class_defines(index, node, rest)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == first:
            return not rest
        if any(isinstance(t, ast.Name) and t.id == first for t in _targets(node)):
            return not rest
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                if (alias.asname or alias.name) == first:
                    return module_defines(index, node.module, [alias.name, *rest], depth + 1)
    return False


def dotted_defined(index: Index, name: str, depth: int = 0) -> bool:
    """Shape 2: the longest module prefix of ``name`` exists and defines the rest."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in index.modules:
            return module_defines(index, prefix, parts[i:], depth)
        if prefix in index.packages:
            return i == len(parts)
    return False


# --- links --------------------------------------------------------------------------------------------------------

_INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)")
_REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
_AUTOLINK = re.compile(r"<([A-Za-z][A-Za-z0-9+.-]*:[^\s<>]+)>")
_HTML = re.compile(r"\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_WEB_URL = re.compile(r"\bhttps?://([^/\s:`'\"<>()\[\]]+)")


def link_targets(text: str) -> list[str]:
    """Every link target of Markdown ``text`` (code blocks and code spans are not links)."""
    body = _SPAN.sub("", prose(text))
    found: list[str] = []
    for pattern in (_INLINE_LINK, _REFERENCE, _AUTOLINK, _HTML):
        found += [m.group(1) for m in pattern.finditer(body)]
    return found


def link_problem(doc: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``doc``) leads outside the repository or nowhere, or None when it is fine."""
    if _SCHEME.match(target):
        return None if target.lower().startswith(("http://", "https://")) else "not a web URL nor a repository path"
    path = unquote(target.split("#", 1)[0].split("?", 1)[0])
    if not path:
        return None  # a section of the same page
    if path.startswith("/"):
        return "an absolute path: a reader's checkout has no such file"
    resolved = (doc.parent / path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "outside the repository"
    if not resolved.exists():
        return "no such file in the repository"
    return None


# --- tests --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spans() -> Spans:
    assert DOC.is_file(), "docs/architecture.md is missing"
    return classify(code_spans(DOC.read_text()), repository().top_level)


def test_the_doc_names_enough_to_be_checked(spans: Spans) -> None:
    assert spans.count >= FEWEST_NAMES, f"only {spans.count} names recognised: has the doc lost its code spans?"
    assert spans.paths and spans.dotted and spans.qualified and spans.calls


def test_every_path_the_doc_names_exists(spans: Spans) -> None:
    missing = [p for p in spans.paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_module_path_the_doc_names_is_defined(spans: Spans) -> None:
    index = repository()
    missing = [name for name in spans.dotted if not dotted_defined(index, name)]
    assert not missing, f"docs/architecture.md names modules or their members that do not exist: {missing}"


def test_every_class_and_method_the_doc_names_is_defined(spans: Spans) -> None:
    index = repository()
    missing = [name for name in spans.qualified if not qualified_defined(index, name)]
    assert not missing, f"docs/architecture.md names classes or members that do not exist: {missing}"


def test_every_function_the_doc_calls_is_defined(spans: Spans) -> None:
    index = repository()
    missing = [name for name in spans.calls if name not in index.functions]
    assert not missing, f"docs/architecture.md names functions that do not exist: {missing}"


def test_the_doc_names_every_folder_and_package(spans: Spans) -> None:
    named = {p.rstrip("/") for p in spans.paths}
    wanted = set(TOP_LEVEL_FOLDERS)
    for top in PACKAGES_TO_COVER:
        wanted |= {
            d.relative_to(ROOT).as_posix() for d in top.iterdir() if d.is_dir() and (d / "__init__.py").is_file()
        }
    unnamed = sorted(w for w in wanted if not any(n == w or n.startswith(w + "/") for n in named))
    assert not unnamed, f"docs/architecture.md says nothing of: {unnamed}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.relative_to(ROOT).as_posix() for d in DOCS])
def test_docs_link_only_inside_the_repository(doc: Path) -> None:
    problems = [f"{t} ({why})" for t in link_targets(doc.read_text()) if (why := link_problem(doc, t)) is not None]
    assert not problems, f"{doc.relative_to(ROOT)} links outside the repository: {problems}"


def test_the_architecture_doc_has_no_web_link_but_localhost() -> None:
    hosts = {m.group(1).lower() for m in _WEB_URL.finditer(DOC.read_text())}
    assert hosts <= LOCAL_HOSTS, f"docs/architecture.md points at the web: {sorted(hosts - LOCAL_HOSTS)}"


# --- the checker checks ---------------------------------------------------------------------------------------------


def test_the_checker_refuses_names_that_do_not_exist() -> None:
    index = repository()
    assert qualified_defined(index, "ObjectReader.open")
    assert qualified_defined(index, "WebHdfsConnection.data_received")  # inherited from ApiConnection
    assert qualified_defined(index, "CacheService.reads")  # set in __init__
    assert not qualified_defined(index, "ObjectReader.no_such_method")
    assert not qualified_defined(index, "NoSuchClass")
    assert dotted_defined(index, "cache_service.metadata.StatusCache.head")  # re-exported by the package
    assert dotted_defined(index, "lakecache_airflow.hooks.cache.CacheHook")
    assert not dotted_defined(index, "cache_service.namespace.reads.no_such_function")
    assert not dotted_defined(index, "cache_service.no_such_module")


def test_the_checker_sorts_spans_by_shape() -> None:
    text = "`a/b.py` `cache_service.config` `PageStore.read` `stream_body()` `store.page_size` `/warehouse/` `OPEN`\n"
    text += "```\n`Inside.fence`\n```\n"
    found = classify(code_spans(text), frozenset({"cache_service"}))
    assert found == Spans(["a/b.py"], ["cache_service.config"], ["PageStore.read"], ["stream_body"])


def test_the_checker_finds_links_outside_the_repository() -> None:
    text = "[a](../shared/ARCHITECTURE.md) [b](configuration.md#keys) <https://example.org> `[c](../x)`\n"
    targets = link_targets(text)
    assert targets == ["../shared/ARCHITECTURE.md", "configuration.md#keys", "https://example.org"]
    doc = ROOT / "docs" / "architecture.md"
    assert link_problem(doc, "../../shared/ARCHITECTURE.md") == "outside the repository"
    assert link_problem(doc, "configuration.md#keys") is None
    assert link_problem(doc, "/etc/hosts") is not None
    assert link_problem(doc, "file:///etc/hosts") is not None
