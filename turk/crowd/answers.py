"""Parse workers' QuestionFormAnswers XML safely and fit it to the HIT that was asked.

Answers are untrusted input. They are parsed with defusedxml with DTDs forbidden, so
external entities and entity expansion ("billion laughs") are refused instead of
resolved; malformed or hostile XML is flagged, never raised. Answers that do not fit the
HIT (an item missing, a value the HIT did not offer, a field the HIT did not have) are
kept with their raw value and a flag.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

NONE_LABEL = "none"
"""Multi-select answer meaning "none of the classes"."""

IGNORED_FIELDS = frozenset({"assignmentId", "workerId", "hitId", "turkSubmitTo"})
"""Form fields the HIT page posts for MTurk's sake, not answers."""


@dataclass(frozen=True)
class ItemSpec:
    """One item of a HIT as the ledger knows it.

    Attributes:
        position: 0-based place in the HIT.
        field: The form field name (``item-<position>``).
        image_id: The image shown.
        concept: The concept asked (binary) or the item's candidate concept.
        is_gold: Whether the answer is known.
        expected: The known answer for gold items.
    """

    position: int
    field: str
    image_id: int
    concept: str | None
    is_gold: bool
    expected: str | None


@dataclass(frozen=True)
class ParsedAnswer:
    """One answer row: a field of one assignment, fitted to the HIT.

    Attributes:
        field: The form field.
        position: The item's position, or None for a field the HIT did not have.
        image_id: The item's image, or None.
        concept: The item's concept, or None.
        value: The raw value as sent (None when the item is missing).
        label: The normalised label when the value is valid, else None.
        is_gold: Whether the item is gold.
        expected: The gold answer, if gold.
        correct: For gold items with a valid label: whether it matches; else None.
        flag: Why the answer does not fit (``missing``, ``unknown value``,
            ``extra field``), or None.
    """

    field: str
    position: int | None
    image_id: int | None
    concept: str | None
    value: str | None
    label: str | None
    is_gold: bool
    expected: str | None
    correct: bool | None
    flag: str | None


@dataclass
class ParseResult:
    """The outcome of parsing one assignment's answer.

    Attributes:
        status: ``ok`` (every item answered validly), ``flagged`` (kept, with flags),
            ``malformed`` (not XML) or ``hostile`` (DTD, entities; refused).
        answers: The answer rows (empty when malformed or hostile).
        flag: A one-line summary of what is wrong, or None.
    """

    status: str
    answers: list[ParsedAnswer] = field(default_factory=list)
    flag: str | None = None


ANSWER_NAMESPACE = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/"
    "QuestionFormAnswers.xsd"
)
"""The namespace of MTurk's QuestionFormAnswers documents."""

_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def answers_xml(fields: Mapping[str, str]) -> str:
    """Write form answers from a batch results CSV as MTurk's QuestionFormAnswers XML.

    Targets that report answers as ``Answer.<field>`` columns (Turkle, a vendor's CSV)
    go through this, so the rest of turk reads every target's answers the same way:
    one ``Answer`` per field in the given order, values XML-escaped, characters XML
    cannot hold dropped (as the MTurk double writes them).

    Args:
        fields: Value per form field (``item-0`` ...), without the ``Answer.`` prefix.

    Returns:
        The XML document, as :func:`read_fields` reads it.
    """
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
        f'<QuestionFormAnswers xmlns="{ANSWER_NAMESPACE}">',
    ]
    for name, value in fields.items():
        parts.append(
            f"<Answer><QuestionIdentifier>{escape(_XML_INVALID.sub('', name))}"
            f"</QuestionIdentifier><FreeText>{escape(_XML_INVALID.sub('', value))}"
            "</FreeText></Answer>"
        )
    parts.append("</QuestionFormAnswers>")
    return "".join(parts)


def read_fields(xml_text: str) -> list[tuple[str, str]]:
    """Read ``(QuestionIdentifier, FreeText)`` pairs from QuestionFormAnswers XML.

    Args:
        xml_text: The raw answer XML.

    Returns:
        The pairs in document order.

    Raises:
        defusedxml.DefusedXmlException: The XML declares a DTD or entities.
        xml.etree.ElementTree.ParseError: The text is not well-formed XML.
        ValueError: The document is not QuestionFormAnswers.
    """
    from defusedxml import ElementTree

    root = ElementTree.fromstring(xml_text, forbid_dtd=True)
    if _local(root.tag) != "QuestionFormAnswers":
        raise ValueError(f"root element is {_local(root.tag)!r}, not QuestionFormAnswers")
    pairs: list[tuple[str, str]] = []
    for answer in root:
        if _local(answer.tag) != "Answer":
            continue
        name, value = "", ""
        for child in answer:
            tag = _local(child.tag)
            if tag == "QuestionIdentifier":
                name = (child.text or "").strip()
            elif tag == "FreeText":
                value = child.text or ""
        pairs.append((name, value))
    return pairs


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def normalise(value: str, task: str, labels: Sequence[str]) -> str | None:
    """Return the canonical label for a raw value, or None when the HIT did not offer it.

    Args:
        value: The raw value.
        task: ``binary`` or ``multi``.
        labels: The values the HIT offered: ``yes``/``no`` (binary) or class names (multi).

    Returns:
        Binary: ``yes`` or ``no``. Multi: the chosen class names sorted and joined by
        ``|``, or ``none``. None when the value is not one the HIT offered.
    """
    text = value.strip()
    if task == "multi":
        if text.lower() == NONE_LABEL:
            return NONE_LABEL
        chosen = [part.strip() for part in text.split("|") if part.strip()]
        if not chosen or any(part not in labels for part in chosen):
            return None
        return "|".join(sorted(set(chosen)))
    lowered = text.lower()
    return lowered if lowered in labels else None


def is_correct(label: str, expected: str, task: str) -> bool:
    """Tell whether a valid label matches a gold item's expected answer.

    Args:
        label: The normalised label.
        expected: The known answer (binary ``yes``/``no``; multi: class names joined by
            ``|`` or ``none``).
        task: ``binary`` or ``multi``.

    Returns:
        True when they agree.
    """
    if task == "multi":
        want = {p.strip() for p in expected.split("|") if p.strip()}
        got = set(label.split("|"))
        return got == want
    return label == expected.strip().lower()


def parse_answer(
    xml_text: str, items: Sequence[ItemSpec], task: str, labels: Sequence[str]
) -> ParseResult:
    """Parse one assignment's answer XML and fit it to the HIT's items.

    Never raises on bad input: malformed and hostile XML come back flagged.

    Args:
        xml_text: The raw QuestionFormAnswers XML.
        items: The HIT's items.
        task: ``binary`` or ``multi``.
        labels: The values the HIT offered.

    Returns:
        The :class:`ParseResult`.
    """
    from xml.etree.ElementTree import ParseError

    from defusedxml import DefusedXmlException

    try:
        pairs = read_fields(xml_text)
    except DefusedXmlException as exc:
        return ParseResult("hostile", flag=f"hostile XML refused ({type(exc).__name__})")
    except (ParseError, ValueError) as exc:
        return ParseResult("malformed", flag=f"malformed XML ({exc})")
    except RecursionError:
        return ParseResult("hostile", flag="hostile XML refused (nesting too deep)")

    by_field = {item.field: item for item in items}
    seen: dict[str, str] = {}
    out: list[ParsedAnswer] = []
    flags: list[str] = []
    used = set(by_field)
    for name, value in pairs:
        if name in IGNORED_FIELDS:
            continue
        if name in by_field and name not in seen:
            seen[name] = value
            continue
        flag = "duplicate field" if name in seen else "extra field"
        key = name or "(unnamed)"
        if key in used:
            key = f"{key}#{len(out) + len(seen)}"
        used.add(key)
        out.append(ParsedAnswer(key, None, None, None, value, None, False, None, None, flag))
        flags.append(f"{flag} {name[:40]!r}")
    for item in items:
        if item.field not in seen:
            out.append(
                ParsedAnswer(
                    item.field,
                    item.position,
                    item.image_id,
                    item.concept,
                    None,
                    None,
                    item.is_gold,
                    item.expected,
                    None,
                    "missing",
                )
            )
            flags.append(f"missing {item.field}")
            continue
        value = seen[item.field]
        label = normalise(value, task, labels)
        item_flag = None if label is not None else "unknown value"
        if item_flag:
            flags.append(f"unknown value {value[:40]!r} for {item.field}")
        correct = (
            is_correct(label, item.expected, task)
            if item.is_gold and label is not None and item.expected is not None
            else None
        )
        out.append(
            ParsedAnswer(
                item.field,
                item.position,
                item.image_id,
                item.concept,
                value,
                label,
                item.is_gold,
                item.expected,
                correct,
                item_flag,
            )
        )
    out.sort(key=lambda a: (a.position is None, a.position or 0, a.field))
    if flags:
        summary = "; ".join(flags[:3]) + (f"; +{len(flags) - 3} more" if len(flags) > 3 else "")
        return ParseResult("flagged", out, summary)
    return ParseResult("ok", out)
