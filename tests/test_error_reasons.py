"""Every error reason a caller can get from a service is listed in its proto.

Each proto service carries a comment block

    // Errors (google.rpc.ErrorInfo.reason, domain "crm.soulkg.dev"):
    // * PHONE_TAKEN (ALREADY_EXISTS): ...

The reasons a service can return are read from the code (no database, no server): every
ServiceError its package raises (an explicit `reason="..."`, or the class's default reason),
every `found(..., "client")` (CLIENT_NOT_FOUND), and the same for the libs/ modules its
calls run through (what the service's modules import, the interceptor, libs/status.py's
mapping of PostgreSQL and unexpected errors).
A reason raised but not listed fails, and so does a listed reason nothing raises.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from libs import errors, registry

ROOT = Path(__file__).resolve().parents[1]
# Every call passes through these, whatever the service imports itself.
CALL_PATH = ("libs.tenancy.interceptors", "libs.status")
HEADER = re.compile(r'Errors \(google\.rpc\.ErrorInfo\.reason, domain "([^"]+)"\)')
ENTRY = re.compile(r"\b([A-Z][A-Z0-9_]+) \(([A-Z_]+)\)")


def _error_classes() -> dict[str, type[errors.ServiceError]]:
    classes, todo = {}, [errors.ServiceError]
    while todo:
        cls = todo.pop()
        classes[cls.__name__] = cls
        todo += cls.__subclasses__()
    return classes


ERROR_CLASSES = _error_classes()


def _module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _imported_libs(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # submodules
    return {name for name in names if name.split(".")[0] == "libs" and _module_file(name)}


def call_path_files(service: str) -> list[Path]:
    """The service's own modules and every libs/ module its calls can run through."""
    package = sorted((ROOT / "services" / service).glob("*.py"))
    seen: set[str] = set()
    todo = list(CALL_PATH)
    for path in package:
        if path.name != "server.py":  # the bootstrap is not on a call's path
            todo += _imported_libs(path)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _imported_libs(_module_file(name))
    return package + sorted({_module_file(name) for name in seen})


def _error_class(func: ast.expr) -> type[errors.ServiceError] | None:
    if isinstance(func, ast.Name):
        return ERROR_CLASSES.get(func.id)
    if isinstance(func, ast.Attribute):
        if func.attr in ERROR_CLASSES:  # errors.NotFound(...)
            return ERROR_CLASSES[func.attr]
        if func.attr == "field" and isinstance(func.value, ast.Name):  # InvalidArgument.field(...)
            return ERROR_CLASSES.get(func.value.id)
    return None


def reasons_raised(files: list[Path]) -> set[tuple[str, str | None]]:
    """(reason, status code name) of every error these files can raise."""
    found: set[tuple[str, str | None]] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            cls = _error_class(node.func)
            reason = next((k.value for k in node.keywords if k.arg == "reason"), None)
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                found.add((reason.value, cls.code if cls else None))
            elif reason is None and cls is not None:
                found.add((cls.default_reason, cls.code))
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if name == "found" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                found.add((f"{node.args[1].value.upper()}_NOT_FOUND", "NOT_FOUND"))
    return found


def documented_reasons(entry: registry.ServiceEntry) -> dict[str, set[tuple[str, str]]]:
    """Proto service → the (reason, code) pairs of its Errors block."""
    blocks: dict[str, set[tuple[str, str]]] = {}
    package_dir = ROOT / "protos" / Path(*entry.proto_package.split("."))
    for proto in sorted(package_dir.glob("*.proto")):
        lines = proto.read_text().splitlines()
        for index, line in enumerate(lines):
            match = re.match(r"service (\w+) \{", line)
            if not match:
                continue
            comment = []
            for above in reversed(lines[:index]):
                if not above.startswith("//"):
                    break
                comment.insert(0, above.removeprefix("//").strip())
            text = " ".join(comment)
            header = HEADER.search(text)
            assert header, f"{proto.name}: service {match[1]} has no 'Errors (...)' comment block"
            assert header[1] == entry.error_domain, f"{match[1]}: the domain is {entry.error_domain}"
            blocks[match[1]] = set(ENTRY.findall(text[header.end():]))
    return blocks


SERVICES = [entry for entry in registry.existing()]


@pytest.mark.parametrize("entry", SERVICES, ids=[e.name for e in SERVICES])
def test_every_reason_a_service_can_return_is_in_its_proto(entry):
    raised = reasons_raised(call_path_files(entry.name))
    blocks = documented_reasons(entry)
    assert blocks, f"{entry.name}: no proto service found"
    documented = set().union(*blocks.values())
    missing = sorted(f"{reason} ({code or 'any code'})" for reason, code in raised
                     if not any(r == reason and (code is None or c == code) for r, c in documented))
    assert not missing, f"{entry.name}: reasons missing from the proto's Errors comments: {missing}"
    stale = sorted(f"{reason} ({code})" for reason, code in documented
                   if not any(r == reason and c in (code, None) for r, c in raised))
    assert not stale, f"{entry.name}: documented reasons nothing raises: {stale}"


def test_the_scan_sees_what_it_should():
    """The scan itself: service literals, class defaults, found(), libs on the call path."""
    raised = reasons_raised(call_path_files("crm"))
    assert {("PHONE_TAKEN", "ALREADY_EXISTS"), ("CLIENT_NOT_FOUND", "NOT_FOUND"),
            ("INVALID_ARGUMENT", "INVALID_ARGUMENT"), ("ETAG_MISMATCH", "ABORTED"),
            ("MISSING_TOKEN", "UNAUTHENTICATED"), ("TOKEN_EXPIRED", "UNAUTHENTICATED"),
            ("USER_INACTIVE", "UNAUTHENTICATED"), ("INTERNAL", "INTERNAL")} <= raised
    assert not any(reason == "UPSTREAM_FAILED" for reason, _ in raised)  # crm calls no other service
