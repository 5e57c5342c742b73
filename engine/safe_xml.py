"""Reading untrusted XML: no DTD, no entity, no network, bounded depth and size of tree.

``parse_xml`` reads a file twice. First Python's expat reads every byte, with handlers that
refuse a DOCTYPE, an entity declaration or an external entity reference the moment the parser
meets one, wherever it stands (behind megabytes of comments, in UTF-16), so the refusal comes
from the parser itself and nothing is ever substituted. It also refuses nesting deeper than
``MAX_DEPTH``, more than ``MAX_NODES`` nodes (elements, attributes, comments...) so that the
tree lxml builds stays small, more than ``MAX_CHILDREN`` elements in one element, and encodings
other than UTF-8 and UTF-16 (and their ASCII and Latin-1 subsets), which both parsers read
alike. Only bytes expat
accepted reach lxml, which builds the tree without DTDs, entities or network access, and the
tree is checked once more for a DOCTYPE. This is the approach of ``defusedxml``, without the
dependency.
"""

from __future__ import annotations

from typing import NoReturn
from xml.parsers import expat

from lxml import etree

MAX_DEPTH = 200
"""The deepest nesting of elements read; bpmn.io files nest about ten levels."""

MAX_CHILDREN = 6_000
"""The most elements one element holds directly. A schema error costs libxml2 a walk over the
element's earlier siblings, so errors among very many siblings grow with their square; the
largest pathway validation takes (5,000 flow elements) draws about 5,000 shapes in one plane."""

MAX_NODES = 200_000
"""The most elements, attributes, comments, processing instructions and CDATA sections read
from one file: about 50 MB of tree. A bpmn.io diagram of 5 MB holds about 140,000."""

_ENCODINGS = frozenset(
    {"utf-8", "utf8", "utf-16", "utf16", "utf-16le", "utf-16be", "us-ascii", "ascii"}
    | {"iso-8859-1", "latin-1", "latin1"}
)
_UCS4_STARTS = (b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\x00<", b"<\x00\x00\x00")
_ENCODING_FIX = "the file must be UTF-8 or UTF-16"


_SAVE_AGAIN = "save the file again from bpmn.io / Camunda Modeler"
_DOCTYPE_FIX = "remove the DOCTYPE: BPMN and DMN files need none"
_TOO_BIG_FIX = (
    "a pathway's diagram is far smaller: split the file, or remove what the engine does not use"
)
_UTF_FIX = "save the file as UTF-8, as bpmn.io / Camunda Modeler do"


class XmlRefused(ValueError):
    """The bytes are not XML we are willing to read: why, where, and what to change."""

    def __init__(self, message: str, line: int | None = None, *, fix: str = _SAVE_AGAIN) -> None:
        super().__init__(message)
        self.line = line
        self.fix = fix


def _screen(content: bytes) -> None:
    """Read every byte with expat, refusing what must never reach a tree builder."""
    if content.startswith(_UCS4_STARTS):
        raise XmlRefused(
            f"this file is in UTF-32, which is not read: {_ENCODING_FIX}", 1, fix=_UTF_FIX
        )
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    nodes = 0
    children = [0]  # of each open element, the document at the bottom

    def refuse(message: str, fix: str = _TOO_BIG_FIX) -> NoReturn:
        raise XmlRefused(message, parser.CurrentLineNumber, fix=fix)

    def declaration(version: str, encoding: str | None, standalone: int) -> None:
        if encoding is not None and encoding.strip().lower() not in _ENCODINGS:
            refuse(f"the file declares the encoding {encoding[:40]!r}: {_ENCODING_FIX}", _UTF_FIX)

    def doctype(*_: object) -> None:
        refuse(
            "a DOCTYPE is not allowed in a BPMN or DMN file "
            "(it was not read: no entity is expanded or fetched)",
            _DOCTYPE_FIX,
        )

    def entity(*_: object) -> None:
        refuse(
            "an entity declaration is not allowed in a BPMN or DMN file (it was not read)",
            _DOCTYPE_FIX,
        )

    def external(*_: object) -> int:
        refuse(
            "an external entity is not allowed in a BPMN or DMN file (it was not fetched)",
            _DOCTYPE_FIX,
        )

    def count(more: int) -> None:
        nonlocal nodes
        nodes += more
        if nodes > MAX_NODES:
            refuse(f"the file has more than {MAX_NODES:,} XML elements, attributes and comments")

    def start(name: str, attributes: dict[str, str]) -> None:
        children[-1] += 1
        if children[-1] > MAX_CHILDREN:
            refuse(f"an element holds more than {MAX_CHILDREN:,} elements directly")
        children.append(0)
        if len(children) > MAX_DEPTH + 1:
            refuse(f"the XML is nested more than {MAX_DEPTH} levels deep")
        count(1 + len(attributes))

    def end(*_: object) -> None:
        children.pop()

    parser.XmlDeclHandler = declaration
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.UnparsedEntityDeclHandler = entity
    parser.NotationDeclHandler = entity
    parser.ExternalEntityRefHandler = external
    parser.StartElementHandler = start
    parser.CommentHandler = lambda _: count(1)
    parser.ProcessingInstructionHandler = lambda _, __: count(1)
    parser.StartCdataSectionHandler = lambda: count(1)
    parser.EndElementHandler = end
    try:
        parser.Parse(content, True)
    except expat.ExpatError as exc:
        reason = expat.errors.messages.get(exc.code, "not well-formed") if exc.code else ""
        if exc.code == expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING]:
            raise XmlRefused(
                f"the file's encoding is not known: {_ENCODING_FIX}", 1, fix=_UTF_FIX
            ) from None
        raise XmlRefused(f"not well-formed XML: {reason}", exc.lineno) from None
    except ValueError as exc:  # pyexpat refuses multi-byte encodings it does not know
        if isinstance(exc, XmlRefused):
            raise
        raise XmlRefused(
            f"the file's encoding cannot be read: {_ENCODING_FIX}", 1, fix=_UTF_FIX
        ) from None


def parse_xml(content: bytes) -> etree._Element:
    """Parse XML bytes safely: no DTD, no entities, no network, bounded depth and node counts;
    raise XmlRefused with the reason and line otherwise."""
    _screen(content)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    try:
        root = etree.fromstring(content, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise XmlRefused(f"not well-formed XML: {exc.msg}", exc.lineno) from None
    if root.getroottree().docinfo.doctype:
        raise XmlRefused(
            "a DOCTYPE is not allowed in a diagram (entities are never expanded)",
            1,
            fix=_DOCTYPE_FIX,
        )
    return root
