"""S3's XML: building response documents, and parsing request bodies without trusting them.

Request bodies are parsed only after their size is capped (by the caller), only as UTF-8, and never with a DOCTYPE:
entity declarations are how a few hundred bytes of XML become gigabytes of text, so they are refused outright.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_DELETE_OBJECTS = 1000  # S3's limit per DeleteObjects request

_DECLARATION = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
# Characters XML 1.0 cannot carry at all; S3 keys may hold them, XML text may not.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class XmlError(ValueError):
    """A request body that is not the XML document S3 expects (S3 answers ``MalformedXML``)."""


# --- building ----------------------------------------------------------------------------------------------


def element(tag: str, *content: str | int | ET.Element | None) -> ET.Element:
    """An element holding text (str, int, bool) and child elements; ``None`` parts are left out."""
    node = ET.Element(tag)
    for part in content:
        if part is None:
            continue
        if isinstance(part, ET.Element):
            node.append(part)
        elif isinstance(part, bool):
            node.text = "true" if part else "false"
        else:
            node.text = _NOT_XML.sub("\ufffd", str(part))
    return node


def document(root: ET.Element, *, namespaced: bool = True) -> bytes:
    """The serialised document with its XML declaration (S3's result documents carry its namespace)."""
    if namespaced:
        root.set("xmlns", NAMESPACE)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def timestamp(seconds: float) -> str:
    """An ISO 8601 UTC time as S3 writes it in XML (``2024-05-01T12:00:00.000Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds * 1000) % 1000:03d}Z"


# --- parsing -----------------------------------------------------------------------------------------------


def parse(body: bytes, root: str) -> ET.Element:
    """The document in ``body`` with namespaces stripped from its tags. Raises ``XmlError``.

    The root element must be ``root``; DOCTYPE and ENTITY declarations and bodies that are not UTF-8 are refused.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise XmlError("the body is not UTF-8") from None
    if _DECLARATION.search(text):
        raise XmlError("DOCTYPE and ENTITY declarations are not accepted")
    try:
        tree = ET.fromstring(body)
    except ET.ParseError as exc:
        raise XmlError(f"not well-formed: {exc}") from None
    for node in tree.iter():
        node.tag = node.tag.rsplit("}", 1)[-1]
    if tree.tag != root:
        raise XmlError(f"expected a <{root}> document, got <{tree.tag}>")
    return tree


def _text(parent: ET.Element, tag: str) -> str | None:
    found = parent.find(tag)
    return None if found is None else (found.text or "")


@dataclass(frozen=True)
class ObjectToDelete:
    """One ``<Object>`` of a DeleteObjects request."""

    key: str
    version_id: str | None = None


def parse_delete(body: bytes) -> tuple[list[ObjectToDelete], bool]:
    """The objects (1 to 1000) and the ``Quiet`` flag of a DeleteObjects body. Raises ``XmlError``."""
    root = parse(body, "Delete")
    objects: list[ObjectToDelete] = []
    quiet = False
    for child in root:
        if child.tag == "Quiet":
            quiet = (child.text or "").strip().lower() == "true"
        elif child.tag == "Object":
            key = _text(child, "Key")
            if not key:
                raise XmlError("an <Object> without a <Key>")
            objects.append(ObjectToDelete(key, _text(child, "VersionId")))
        else:
            raise XmlError(f"unexpected <{child.tag}> in <Delete>")
    if not 1 <= len(objects) <= MAX_DELETE_OBJECTS:
        raise XmlError(f"a Delete request names 1 to {MAX_DELETE_OBJECTS} objects, not {len(objects)}")
    return objects, quiet


@dataclass(frozen=True)
class CompletedPart:
    """One ``<Part>`` of a CompleteMultipartUpload request: its number, ETag (unquoted) and checksums."""

    number: int
    etag: str
    checksums: dict[str, str] = field(default_factory=dict)


def parse_complete(body: bytes) -> list[CompletedPart]:
    """The parts, in the order given, of a CompleteMultipartUpload body. Raises ``XmlError``."""
    root = parse(body, "CompleteMultipartUpload")
    parts: list[CompletedPart] = []
    for child in root:
        if child.tag != "Part":
            raise XmlError(f"unexpected <{child.tag}> in <CompleteMultipartUpload>")
        number, etag = _text(child, "PartNumber"), _text(child, "ETag")
        if number is None or etag is None:
            raise XmlError("a <Part> needs a <PartNumber> and an <ETag>")
        try:
            value = int(number.strip())
        except ValueError:
            raise XmlError(f"<PartNumber> {number!r} is not a number") from None
        checksums = {
            node.tag[len("Checksum") :].lower(): (node.text or "").strip()
            for node in child
            if node.tag.startswith("Checksum")
        }
        parts.append(CompletedPart(value, etag.strip().strip('"'), checksums))
    if not parts:
        raise XmlError("a CompleteMultipartUpload request names at least one part")
    return parts


# --- answers of S3 the cache narrows ----------------------------------------------------------------------


def visible_buckets(body: bytes, sees: Callable[[str], bool]) -> bytes:
    """S3's ListBuckets answer ``body`` with only the buckets ``sees`` admits. Raises ``XmlError``."""
    root = parse(body, "ListAllMyBucketsResult")
    listed = root.find("Buckets")
    if listed is not None:
        for bucket in list(listed):
            if not sees(bucket.findtext("Name") or ""):
                listed.remove(bucket)
    return document(root)


def delete_request(objects: list[ObjectToDelete], quiet: bool) -> bytes:
    """A DeleteObjects body naming ``objects``."""
    return document(
        element(
            "Delete",
            element("Quiet", quiet),
            *(element("Object", element("Key", o.key), element("VersionId", o.version_id)) for o in objects),
        )
    )


def with_delete_errors(body: bytes | None, errors: list[tuple[ObjectToDelete, str, str]]) -> bytes:
    """S3's DeleteObjects answer ``body`` (None: no request was sent) with an ``<Error>`` for each of ``errors``
    (the object, a code and a message) added. Raises ``XmlError``."""
    root = element("DeleteResult") if body is None else parse(body, "DeleteResult")
    for obj, code, message in errors:
        root.append(
            element(
                "Error",
                element("Key", obj.key),
                element("VersionId", obj.version_id),
                element("Code", code),
                element("Message", message),
            )
        )
    return document(root)
