"""The API page, from the contract's descriptors with their comments (proto/workflowstate/v1).

protoc compiles the .proto files with --include_source_info, which keeps each element's leading
comment, so that every RPC, message, field and enum value is documented by the comment buf's
COMMENTS lint already requires of it. Each RPC's facts (effect, batchable) and its
idempotency_level come from its options.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

from workflowstate.v1 import rpc_facts_pb2

from .markdown import GENERATED_NOTE, code, table

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
PACKAGE = "workflowstate.v1"

# The tags of FileDescriptorProto and DescriptorProto fields in a source location's path.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM = 2, 3, 4
_METHOD = _VALUE = 2

_SCALARS = {
    value: name.removeprefix("TYPE_").lower()
    for name, value in descriptor_pb2.FieldDescriptorProto.Type.items()
    if name not in ("TYPE_MESSAGE", "TYPE_ENUM", "TYPE_GROUP")
}


def contract_files() -> list[descriptor_pb2.FileDescriptorProto]:
    """The package's files, compiled by protoc with their comments, in file-name order."""
    from grpc_tools import protoc  # test/dev dependency, as for scripts/generate_stubs.py

    protos = sorted(str(path.relative_to(PROTO_ROOT)) for path in (PROTO_ROOT / "workflowstate" / "v1").glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    with tempfile.TemporaryDirectory(prefix="workflowstate-docs-") as scratch:
        output = Path(scratch) / "contract.binpb"
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            "--include_source_info",
            f"--descriptor_set_out={output}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc could not compile proto/; see its messages above")
        files = descriptor_pb2.FileDescriptorSet.FromString(output.read_bytes()).file
    return sorted(files, key=lambda file: file.name)


def _comments(file: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {tuple(location.path): location.leading_comments.strip() for location in file.source_code_info.location}


def _paragraphs(comment: str) -> str:
    """A proto comment as Markdown: its lines joined, its blank lines kept as paragraph breaks."""
    return "\n\n".join(" ".join(part.split()) for part in comment.split("\n\n") if part.strip())


def _anchor(name: str) -> str:
    return name.lower().replace(".", "-")


def _link(full_name: str, documented: set[str]) -> str:
    """A type as a link to its section when this page documents it, else as its name."""
    name = full_name.lstrip(".").removeprefix(PACKAGE + ".")
    return f"[`{name}`](#{_anchor(name)})" if name in documented else code(name)


def _messages(
    messages: list[descriptor_pb2.DescriptorProto], prefix: str, path: tuple[int, ...]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    """Every message, nested ones after their parent, with its name below the package and its source path."""
    for index, message in enumerate(messages):
        name = f"{prefix}{message.name}"
        yield name, message, (*path, index)
        yield from _messages(list(message.nested_type), f"{name}.", (*path, index, _NESTED))


def _enums(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, descriptor_pb2.EnumDescriptorProto, tuple[int, ...]]]:
    for index, enum in enumerate(file.enum_type):
        yield enum.name, enum, (_ENUM, index)
    for name, message, path in _messages(list(file.message_type), "", (_MESSAGE,)):
        for index, enum in enumerate(message.enum_type):
            yield f"{name}.{enum.name}", enum, (*path, _NESTED_ENUM, index)


def _field_type(
    field: descriptor_pb2.FieldDescriptorProto, maps: dict[str, descriptor_pb2.DescriptorProto], documented: set[str]
) -> str:
    if field.type_name.lstrip(".") in maps:
        key, value = maps[field.type_name.lstrip(".")].field
        return f"map&lt;{_field_type(key, maps, documented)}, {_field_type(value, maps, documented)}&gt;"
    shown = _link(field.type_name, documented) if field.type_name else code(_SCALARS[field.type])
    if field.label == descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {shown}"
    if field.proto3_optional:
        return f"optional {shown}"
    return shown


def _idempotency(method: descriptor_pb2.MethodDescriptorProto) -> str:
    level = method.options.idempotency_level
    return descriptor_pb2.MethodOptions.IdempotencyLevel.Name(level)


def _rpc_section(method: descriptor_pb2.MethodDescriptorProto, comment: str, documented: set[str]) -> str:
    facts = method.options.Extensions[rpc_facts_pb2.rpc_facts]
    request = ("stream " if method.client_streaming else "") + _link(method.input_type, documented)
    response = ("stream " if method.server_streaming else "") + _link(method.output_type, documented)
    rows = [
        (
            request,
            response,
            code(rpc_facts_pb2.RpcEffect.Name(facts.effect)),
            "yes" if facts.batchable else "no",
            code(_idempotency(method)),
        )
    ]
    return "\n\n".join(
        [
            f"### {method.name} {{ #rpc-{_anchor(method.name)} }}",
            _paragraphs(comment),
            table(("request", "response", "effect", "batchable", "idempotency"), rows),
        ]
    )


def _message_sections(
    file: descriptor_pb2.FileDescriptorProto, maps: dict[str, descriptor_pb2.DescriptorProto], documented: set[str]
) -> list[str]:
    comments = _comments(file)
    parts: list[str] = []
    for name, message, path in _messages(list(file.message_type), "", (_MESSAGE,)):
        if message.options.map_entry:
            continue
        parts += [f"### {name} {{ #{_anchor(name)} }}", f"*{file.name}*", _paragraphs(comments.get(path, ""))]
        fields = [
            (
                code(field.name),
                str(field.number),
                _field_type(field, maps, documented),
                _paragraphs(comments.get((*path, _FIELD, index), "")),
            )
            for index, field in enumerate(message.field)
        ]
        if fields:
            parts.append(table(("field", "number", "type", "meaning"), fields))
    return parts


def _enum_sections(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    comments = _comments(file)
    parts: list[str] = []
    for name, enum, path in _enums(file):
        values = [
            (code(value.name), str(value.number), _paragraphs(comments.get((*path, _VALUE, index), "")))
            for index, value in enumerate(enum.value)
        ]
        parts += [
            f"### {name} {{ #{_anchor(name)} }}",
            f"*{file.name}*",
            _paragraphs(comments.get(path, "")),
            table(("value", "number", "meaning"), values),
        ]
    return parts


def page() -> str:
    files = contract_files()
    every_message = [
        (f"{file.package}.{name}", name, message)
        for file in files
        for name, message, _ in _messages(list(file.message_type), "", (_MESSAGE,))
    ]
    # A map field's entry message is documented as the field's map<key, value> type, not as a message.
    maps = {full_name: message for full_name, _, message in every_message if message.options.map_entry}
    documented = {name for _, name, message in every_message if not message.options.map_entry}
    documented |= {name for file in files for name, _, _ in _enums(file)}
    parts = [
        GENERATED_NOTE.format(source="the comments and options of proto/workflowstate/v1"),
        "# API",
        f"The contract is the package `{PACKAGE}` in `proto/workflowstate/v1`. Each RPC's *effect* decides the role "
        "a token needs; *batchable* RPCs may also be carried by a `Batch` operation; the *idempotency* level says "
        "whether the SDKs repeat a call after a lost reply (`IDEMPOTENCY_UNKNOWN`: never).",
    ]
    for file in files:
        comments = _comments(file)
        for service_index, service in enumerate(file.service):
            parts += [f"## {service.name}", _paragraphs(comments.get((_SERVICE, service_index), ""))]
            for method_index, method in enumerate(service.method):
                parts.append(_rpc_section(method, comments.get((_SERVICE, service_index, _METHOD, method_index), ""), documented))
    parts.append("## Messages")
    for file in files:
        parts += _message_sections(file, maps, documented)
    parts.append("## Enums")
    for file in files:
        parts += _enum_sections(file)
    return "\n\n".join(part for part in parts if part) + "\n"
