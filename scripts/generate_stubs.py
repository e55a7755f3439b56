"""Generate the Python stubs of the contract from proto/ into src/workflowstate/v1.

The .proto files are the one source of truth; the stubs are produced here and
never edited by hand. The package's ``__init__.py`` is generated too: it re-exports
every message and enum of every file, so callers import the package, not a file.
``--check`` generates into a scratch folder and fails when
the committed stubs differ (the drift test runs it).

Usage: python scripts/generate_stubs.py [--check]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO / "proto"
OUTPUT_ROOT = REPO / "src"
PACKAGE_DIR = Path("workflowstate") / "v1"
SERVICE_FILE = "workflow_state.proto"
SERVICE_NAME = "WorkflowStateService"
# Files in the package folder that are not protoc output.
HAND_KEPT = {"py.typed"}


def generate(output_root: Path) -> list[Path]:
    """Run protoc with the Python, gRPC and mypy plugins; return the generated files."""
    from grpc_tools import protoc  # test/dev dependency, imported only when generating

    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    # The mypy plugins are console scripts installed beside this interpreter.
    scripts_dir = Path(sys.executable).parent
    args = [
        "protoc",
        f"--plugin=protoc-gen-mypy={scripts_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={scripts_dir / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={output_root}",
        f"--grpc_python_out={output_root}",
        f"--mypy_out={output_root}",
        f"--mypy_grpc_out={output_root}",
        *protos,
    ]
    with tempfile.TemporaryDirectory() as scratch:
        descriptor_set = Path(scratch) / "descriptors.binpb"
        if protoc.main([*args, f"--descriptor_set_out={descriptor_set}"]) != 0:
            raise SystemExit("protoc failed; see the messages above")
        package = output_root / PACKAGE_DIR
        (package / "__init__.py").write_text(package_init(descriptor_set.read_bytes()))
    # The gRPC plugins write a module for every file; only the service's file has anything in it.
    for empty in package.glob("*_pb2_grpc.py*"):
        if not empty.name.startswith(Path(SERVICE_FILE).stem + "_pb2_grpc"):
            empty.unlink()
    return sorted(p for p in package.iterdir() if p.is_file())


def package_init(descriptor_set: bytes) -> str:
    """The package's __init__.py: every message, enum and enum value of every file, by name.

    Callers write ``from workflowstate import v1 as pb`` and ``pb.Run``, and never need to know
    which capability's file holds a name, so a message can move between files without touching
    them. The imports are spelled out (no star import) so that type checkers and readers see
    each name, and ``__all__`` marks them as the package's public names.
    """
    from google.protobuf import descriptor_pb2

    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set).file
    lines = [
        '"""Stubs generated from proto/workflowstate/v1 by scripts/generate_stubs.py. Do not edit.',
        "",
        "Every message, enum and enum value of the package workflowstate.v1, whichever file defines it,",
        f"and the descriptor of {SERVICE_NAME} as SERVICE_DESCRIPTOR.",
        '"""',
        "",
        "from google.protobuf.descriptor import ServiceDescriptor",
        "",
    ]
    exported = []
    for file in sorted(files, key=lambda f: f.name):
        if not file.name.startswith(f"{PACKAGE_DIR.as_posix()}/"):
            continue  # a well-known type's file, imported by ours
        module = Path(file.name).stem + "_pb2"
        names = [message.name for message in file.message_type]
        for enum in file.enum_type:
            names.append(enum.name)
            names.extend(value.name for value in enum.value)  # protoc puts a top-level enum's values in the module too
        lines.extend(f"from .{module} import {name}" for name in names)
        exported.extend(names)
    service_module = Path(SERVICE_FILE).stem + "_pb2"
    lines += [
        f"from .{service_module} import DESCRIPTOR as _SERVICE_FILE_DESCRIPTOR",
        "",
        "# The descriptor of the service: its methods, their request and response types, their options.",
        f'SERVICE_DESCRIPTOR: ServiceDescriptor = _SERVICE_FILE_DESCRIPTOR.services_by_name["{SERVICE_NAME}"]',
        "",
        "__all__ = [",
        *(f'    "{name}",' for name in sorted([*exported, "SERVICE_DESCRIPTOR"])),
        "]",
        "",
    ]
    return "\n".join(lines)


def drifted_files() -> list[str]:
    """Names of stub files that differ from what the proto generates now."""
    committed = OUTPUT_ROOT / PACKAGE_DIR
    with tempfile.TemporaryDirectory() as scratch:
        fresh = generate(Path(scratch))
        fresh_names = {p.name for p in fresh}
        committed_names = {p.name for p in committed.iterdir() if p.is_file() and p.name not in HAND_KEPT}
        differing = [p.name for p in fresh if not (committed / p.name).exists() or not filecmp.cmp(p, committed / p.name, shallow=False)]
        return sorted(set(differing) | (committed_names - fresh_names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ from the proto")
    options = parser.parse_args()
    if options.check:
        drift = drifted_files()
        if drift:
            print("stubs out of date with proto/: " + ", ".join(drift), file=sys.stderr)
            print("run: python scripts/generate_stubs.py", file=sys.stderr)
            return 1
        print("stubs match proto/")
        return 0
    package = OUTPUT_ROOT / PACKAGE_DIR
    for stale in package.glob("*_pb2*"):
        stale.unlink()
    for path in generate(OUTPUT_ROOT):
        print(f"wrote {path.relative_to(REPO)}")
    shutil.rmtree(package / "__pycache__", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
