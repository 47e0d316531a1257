"""The ``handoff`` target: HITs as files for a labelling vendor or MTurk's requester web UI.

Some workforces take work only as files: MTurk's requester web UI, a commercial labelling
service, Turkle's own upload page. The hand-off is a crowd target like any other, so
publish, collect, review, rounds, gold, aggregation and certification work unchanged;
its "server" is a folder (``handoff/`` beside the ledger unless told otherwise) holding a
small SQLite state file, ``handoff.db``, with the HITs sent to it and the results
imported into it:

- ``turk publish --target handoff`` records each HIT there with its page as a batch
  server takes it (:class:`~turk.crowd.backend.HitPage`: the bare fragment with
  ``${image_url_<k>}`` placeholders and its escaped row);
- :func:`export_handoff` (``turk handoff export``) writes, per batch template, the
  template (``<name>.html``), MTurk's batch CSV (``<name>.csv``: one row per HIT, the
  template's variables as columns, gold mixed in and not marked), a preview of the first
  HIT, the media files to host, and ``manifest.json``; which row is which HIT is kept in
  the state file and never written where the vendor sees it;
- :func:`import_results` (``turk handoff import``) reads a results CSV in MTurk's layout
  (``Input.*``, ``Answer.*``, ``WorkerId``, ``AssignmentId``), finds each row's HIT by
  its ``Input.*`` values (image URLs are per HIT and position), checks every row, and
  stores all of them in one transaction or none; a re-import adds nothing;
- collect then reads the imported assignments like any target's, with answers as
  QuestionFormAnswers XML (:func:`turk.crowd.answers.answers_xml`).

turk pays nobody through a hand-off (:data:`~turk.crowd.backend.UNPAID_TARGETS`):
approvals, rejections, bonuses and blocks are decisions in the ledger only.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from turk.crowd.answers import answers_xml, normalise
from turk.crowd.backend import (
    ASSIGNMENT_STATUSES,
    HANDOFF,
    AssignmentInfo,
    BonusInfo,
    CallStats,
    DuplicateRequestError,
    HitInfo,
    HitPage,
    HitTypeSpec,
)
from turk.errors import CrowdError, InputError
from turk.hits.batch import fill_template

__all__ = [
    "DEFAULT_FOLDER",
    "STATE_FILE",
    "HandoffBackend",
    "HandoffExport",
    "HandoffImport",
    "ResultsError",
    "export_handoff",
    "import_results",
    "open_handoff",
]

DEFAULT_FOLDER = "handoff"
"""The hand-off folder beside the ledger unless ``--endpoint-url`` names another."""

STATE_FILE = "handoff.db"
"""The state file inside the hand-off folder."""

REQUIRED_COLUMNS = ("AssignmentId", "WorkerId")
"""Columns every results CSV must have, besides ``Input.*`` and ``Answer.*``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_hits (
    hit_id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    hit_type_id TEXT NOT NULL,
    annotation TEXT NOT NULL,
    template_name TEXT NOT NULL,
    template TEXT NOT NULL,
    row_json TEXT NOT NULL,
    row_key TEXT NOT NULL UNIQUE,
    max_assignments INTEGER NOT NULL,
    created TEXT NOT NULL,
    expires TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS handoff_assignments (
    assignment_id TEXT PRIMARY KEY,
    hit_id TEXT NOT NULL REFERENCES handoff_hits(hit_id),
    worker_id TEXT NOT NULL,
    answer_xml TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    accept_time TEXT,
    submit_time TEXT,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handoff_qualifications (
    type_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
"""

_TASK = re.compile(r'data-task="([^"]*)"')
_CLASSES = re.compile(r'data-classes="([^"]*)"')
_FIELD = re.compile(r'data-item="([^"]*)"')


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _row_key(values: dict[str, str]) -> str:
    """A HIT's identity among rows: its values, unescaped, by variable name."""
    plain = {name: html.unescape(value).strip() for name, value in sorted(values.items())}
    return json.dumps(plain, sort_keys=True, ensure_ascii=True)


def _type_id(spec: HitTypeSpec) -> str:
    return "H" + hashlib.sha256(spec.canonical().encode()).hexdigest()[:20]


@dataclass(frozen=True)
class _Page:
    """What the results of one HIT must fit: its fields and the values they may take."""

    task: str
    labels: tuple[str, ...]
    fields: tuple[str, ...]


def _page_of(template: str) -> _Page:
    task_match = _TASK.search(template)
    task = task_match.group(1) if task_match else "binary"
    if task == "multi":
        found = _CLASSES.search(template)
        labels = tuple(html.unescape(found.group(1)).split("|")) if found else ()
    else:
        labels = ("yes", "no")
    return _Page(task, labels, tuple(html.unescape(f) for f in _FIELD.findall(template)))


class HandoffBackend:
    """The crowd interface over a hand-off folder (see the module docstring).

    Args:
        folder: The hand-off folder (created when missing).
    """

    target = HANDOFF

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.endpoint_url = str(folder)
        self.stats = CallStats()
        folder.mkdir(parents=True, exist_ok=True)
        # Publish creates HITs from several threads; one connection, used under one lock.
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(folder / STATE_FILE, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        with self._conn:
            self._conn.executescript(_SCHEMA)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Run one query under the lock (publish calls from several threads)."""
        with self._lock:
            return list(self._conn.execute(sql, params))

    def _count(self, op: str) -> None:
        with self._lock:
            self.stats.calls[op] = self.stats.calls.get(op, 0) + 1
            self.stats.requests += 1

    def close(self) -> None:
        """Close the state file."""
        self._conn.close()

    # -- HITs ------------------------------------------------------------------------------

    def balance(self) -> Decimal | None:
        """A hand-off holds no money (None)."""
        self._count("GetAccountBalance")
        return None

    def create_hit_type(self, spec: HitTypeSpec) -> str:
        """Return turk's id for these properties (a hand-off has no HIT types)."""
        self._count("CreateHITType")
        return _type_id(spec)

    def create_hit(
        self,
        *,
        hit_type_id: str,
        question_xml: str,
        max_assignments: int,
        lifetime_s: int,
        annotation: str,
        token: str,
        page: HitPage | None = None,
    ) -> HitInfo:
        """Record a HIT in the hand-off folder, ready to export.

        Raises:
            DuplicateRequestError: A HIT with this token is recorded (its id is given).
            CrowdError: No ``page`` (a hand-off needs the batch template), or another
                HIT has the same image URLs.
        """
        self._count("CreateHIT")
        if page is None:
            raise CrowdError(
                f"CreateHIT {annotation}: target handoff needs the HIT's batch-template page"
            )
        with self._lock:
            known = self._conn.execute(
                "SELECT hit_id FROM handoff_hits WHERE token = ?", (token,)
            ).fetchone()
            if known is not None:
                raise DuplicateRequestError(
                    f"CreateHIT {annotation}: token {token} was used", known["hit_id"]
                )
            hit_id = "HO" + hashlib.sha256(token.encode()).hexdigest()[:18].upper()
            now = _now()
            row = dict(page.row)
            try:
                with self._conn:
                    self._conn.execute(
                        "INSERT INTO handoff_hits (hit_id, token, hit_type_id, annotation, "
                        "template_name, template, row_json, row_key, max_assignments, "
                        "created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            hit_id,
                            token,
                            hit_type_id,
                            annotation,
                            page.name,
                            page.template,
                            json.dumps(row, sort_keys=True),
                            _row_key(row),
                            max_assignments,
                            _iso(now),
                            _iso(now + timedelta(seconds=lifetime_s)),
                        ),
                    )
            except sqlite3.IntegrityError as exc:
                raise CrowdError(
                    f"CreateHIT {annotation}: another HIT in {self.folder} shows the same "
                    "images; a hand-off tells HITs apart by their image URLs"
                ) from exc
        return self.get_hit(hit_id)

    def _hit_row(self, op: str, hit_id: str) -> sqlite3.Row:
        row = next(iter(self._read("SELECT * FROM handoff_hits WHERE hit_id = ?", (hit_id,))), None)
        if row is None:
            raise CrowdError(f"{op} {hit_id}: no such HIT in the hand-off folder {self.folder}")
        return row

    def _info(self, row: sqlite3.Row) -> HitInfo:
        (counted,) = self._read(
            "SELECT COUNT(*) FROM handoff_assignments WHERE hit_id = ?", (row["hit_id"],)
        )
        returned = int(counted[0])
        expires = datetime.fromisoformat(row["expires"])
        maximum = int(row["max_assignments"])
        if row["deleted"]:
            status = "Disposed"
        elif returned >= maximum or expires <= _now():
            status = "Reviewable"
        else:
            status = "Assignable"
        return HitInfo(
            hit_id=row["hit_id"],
            hit_type_id=row["hit_type_id"],
            status=status,
            max_assignments=maximum,
            available=max(0, maximum - returned),
            pending=0,
            completed=0,
            annotation=row["annotation"],
            expiration=expires,
        )

    def get_hit(self, hit_id: str) -> HitInfo:
        """Return one recorded HIT."""
        self._count("GetHIT")
        return self._info(self._hit_row("GetHIT", hit_id))

    def list_hits(self) -> Iterator[HitInfo]:
        """Yield every HIT recorded and not deleted, oldest first."""
        self._count("ListHITs")
        rows = self._read("SELECT * FROM handoff_hits WHERE deleted = 0 ORDER BY created, hit_id")
        for row in rows:
            yield self._info(row)

    def list_reviewable_hits(self, hit_type_id: str | None = None) -> Iterator[HitInfo]:
        """Yield HITs whose results are all in, or that expired."""
        for info in self.list_hits():
            if info.status == "Reviewable" and hit_type_id in (None, info.hit_type_id):
                yield info

    # -- assignments -----------------------------------------------------------------------

    def _assignment(self, row: sqlite3.Row) -> AssignmentInfo:
        return AssignmentInfo(
            assignment_id=row["assignment_id"],
            worker_id=row["worker_id"],
            hit_id=row["hit_id"],
            status="Submitted",
            answer_xml=row["answer_xml"],
            accept_time=datetime.fromisoformat(row["accept_time"]) if row["accept_time"] else None,
            submit_time=datetime.fromisoformat(row["submit_time"]) if row["submit_time"] else None,
        )

    def list_assignments(
        self, hit_id: str, statuses: Sequence[str] = ASSIGNMENT_STATUSES
    ) -> Iterator[AssignmentInfo]:
        """Yield the HIT's imported assignments (all ``Submitted``: decisions are turk's)."""
        self._count("ListAssignmentsForHIT")
        self._hit_row("ListAssignmentsForHIT", hit_id)
        if "Submitted" not in statuses:
            return
        rows = self._read(
            "SELECT * FROM handoff_assignments WHERE hit_id = ? ORDER BY assignment_id",
            (hit_id,),
        )
        for row in rows:
            yield self._assignment(row)

    def get_assignment(self, assignment_id: str) -> AssignmentInfo:
        """Return one imported assignment."""
        self._count("GetAssignment")
        row = next(
            iter(
                self._read(
                    "SELECT * FROM handoff_assignments WHERE assignment_id = ?", (assignment_id,)
                )
            ),
            None,
        )
        if row is None:
            raise CrowdError(f"GetAssignment {assignment_id}: not imported into {self.folder}")
        return self._assignment(row)

    def approve(self, assignment_id: str, feedback: str | None = None) -> None:
        """Nothing to send: turk pays nobody through a hand-off; the ledger records it."""
        self._count("ApproveAssignment")

    def reject(self, assignment_id: str, feedback: str) -> None:
        """Nothing to send: the ledger records the rejection (tell the vendor yourself)."""
        self._count("RejectAssignment")

    def send_bonus(
        self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str
    ) -> None:
        """Nothing to send: the ledger records the bonus decision."""
        self._count("SendBonus")

    def list_bonuses(self, assignment_id: str) -> list[BonusInfo]:
        """A hand-off holds no bonuses (the ledger has turk's decisions)."""
        return []

    def list_hit_bonuses(self, hit_id: str) -> list[BonusInfo]:
        """A hand-off holds no bonuses (the ledger has turk's decisions)."""
        return []

    def block_worker(self, worker_id: str, reason: str) -> None:
        """Nothing to send: the ledger keeps the block (tell the vendor yourself)."""
        self._count("CreateWorkerBlock")

    def extend_hit(self, hit_id: str, additional: int, token: str) -> None:
        """Add assignments to a recorded HIT (the next export asks for them)."""
        self._count("CreateAdditionalAssignmentsForHIT")
        self._hit_row("CreateAdditionalAssignmentsForHIT", hit_id)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE handoff_hits SET max_assignments = max_assignments + ? WHERE hit_id = ?",
                (additional, hit_id),
            )

    def expire_hit(self, hit_id: str) -> None:
        """Stop exporting the HIT (results for it may still be imported)."""
        self.update_expiration(hit_id, _now())

    def update_expiration(self, hit_id: str, expire_at: datetime) -> None:
        """Move the HIT's expiry; a future one exports it again."""
        self._count("UpdateExpirationForHIT")
        self._hit_row("UpdateExpirationForHIT", hit_id)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE handoff_hits SET expires = ? WHERE hit_id = ?", (_iso(expire_at), hit_id)
            )

    def delete_hit(self, hit_id: str) -> None:
        """Mark the HIT deleted (it is no longer listed or exported)."""
        self._count("DeleteHIT")
        self._hit_row("DeleteHIT", hit_id)
        with self._lock, self._conn:
            self._conn.execute("UPDATE handoff_hits SET deleted = 1 WHERE hit_id = ?", (hit_id,))

    def find_qualification_type(self, name: str) -> str | None:
        """Return the id recorded for a qualification called ``name``, or None."""
        row = next(
            iter(self._read("SELECT type_id FROM handoff_qualifications WHERE name = ?", (name,))),
            None,
        )
        return None if row is None else str(row["type_id"])

    def create_qualification_type(self, name: str, description: str) -> str:
        """Record a qualification (a vendor enforces none of turk's; say so to it)."""
        type_id = "Q" + hashlib.sha256(name.encode()).hexdigest()[:20]
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO handoff_qualifications (type_id, name) VALUES (?, ?)",
                (type_id, name),
            )
        return type_id

    def grant_qualification(self, type_id: str, worker_id: str, value: int = 1) -> None:
        """Nothing to send: a vendor's workers are the vendor's."""

    # -- export and import (below) -----------------------------------------------------------

    def open_hits(self) -> list[sqlite3.Row]:
        """Every HIT recorded, not deleted and not expired, in creation order."""
        now = _iso(_now())
        return self._read(
            "SELECT * FROM handoff_hits WHERE deleted = 0 AND expires > ? ORDER BY created, hit_id",
            (now,),
        )


def open_handoff(folder: str | Path | None, ledger_root: Path | None = None) -> HandoffBackend:
    """Open the ``handoff`` target.

    Args:
        folder: The hand-off folder; None for :data:`DEFAULT_FOLDER` beside the ledger.
        ledger_root: The ledger's folder (where the default folder lies); None for the
            current folder.

    Returns:
        The backend.
    """
    if folder is None:
        return HandoffBackend((ledger_root or Path.cwd()) / DEFAULT_FOLDER)
    return HandoffBackend(Path(folder))


@dataclass
class HandoffExport:
    """What :func:`export_handoff` wrote.

    Attributes:
        out_dir: The export folder.
        templates: Template names, one CSV and one HTML file each.
        hits: HITs (CSV rows) written.
        assignments: Results asked for, summed over the HITs.
        media: Media files copied into ``<out>/media``.
        missing_media: Media the pages load that were not found to copy.
    """

    out_dir: Path
    templates: list[str] = field(default_factory=list)
    hits: int = 0
    assignments: int = 0
    media: int = 0
    missing_media: list[str] = field(default_factory=list)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "batch"


def export_handoff(
    backend: HandoffBackend, out_dir: Path, *, media_dir: Path | None = None
) -> HandoffExport:
    """Write every open HIT of the hand-off as batch templates and MTurk batch CSVs.

    Args:
        backend: The hand-off target.
        out_dir: Where to write (created; files of the same names are replaced).
        media_dir: Where publish staged the media (``<ledger root>/media``); files the
            pages load from there are copied into ``<out>/media`` for hosting.

    Returns:
        The :class:`HandoffExport`.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    report = HandoffExport(out_dir)
    groups: dict[tuple[str, str], list[sqlite3.Row]] = {}
    for row in backend.open_hits():
        groups.setdefault((row["template_name"], row["template"]), []).append(row)
    names: dict[str, int] = {}
    for name, _ in groups:
        names[name] = names.get(name, 0) + 1
    manifest: list[dict[str, object]] = []
    wanted_media: set[str] = set()
    for (name, template), rows in groups.items():
        variables = sorted(json.loads(rows[0]["row_json"]), key=lambda v: int(v.rsplit("_", 1)[1]))
        stem = _file_name(name if names[name] == 1 else f"{name}-n{len(variables)}")
        (out_dir / f"{stem}.html").write_text(template, encoding="utf-8")
        with (out_dir / f"{stem}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(variables)
            for row in rows:
                values = json.loads(row["row_json"])
                writer.writerow([values[v] for v in variables])
                wanted_media.update(
                    html.unescape(values[v]).rsplit("/", 1)[-1].split("?", 1)[0] for v in variables
                )
        first = json.loads(rows[0]["row_json"])
        preview = fill_template(template, first)
        (out_dir / f"{stem}.preview.html").write_text(
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
            f"{preview}\n</body></html>\n",
            encoding="utf-8",
        )
        asked = sum(int(r["max_assignments"]) for r in rows)
        manifest.append(
            {
                "template": f"{stem}.html",
                "csv": f"{stem}.csv",
                "hits": len(rows),
                "assignments_per_hit": sorted({int(r["max_assignments"]) for r in rows}),
                "variables": variables,
            }
        )
        report.templates.append(stem)
        report.hits += len(rows)
        report.assignments += asked
    if media_dir is not None:
        (out_dir / "media").mkdir(exist_ok=True)
        for template_name, template in groups:
            del template_name
            wanted_media.update(re.findall(r'src="(?:[^"]*/)?(ex-[^"/]+)"', template))
        for media_name in sorted(wanted_media):
            source = media_dir / media_name
            if source.is_file():
                shutil.copyfile(source, out_dir / "media" / media_name)
                report.media += 1
            else:
                report.missing_media.append(media_name)
    (out_dir / "manifest.json").write_text(
        json.dumps(
            {"format": "turk-handoff/1", "exported_at": _iso(_now()), "batches": manifest},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return report


class ResultsError(InputError):
    """A results CSV has rows turk cannot use; nothing of it was imported.

    Args:
        message: The one-line summary.
        problems: One ``file:line: what; fix`` line per problem.
    """

    def __init__(self, message: str, problems: Sequence[str]) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass
class HandoffImport:
    """What :func:`import_results` did.

    Attributes:
        path: The results file.
        rows: Data rows read.
        added: Assignments new to the hand-off.
        known: Rows already imported before (same assignment, same content).
    """

    path: Path
    rows: int = 0
    added: int = 0
    known: int = 0


def _content_hash(hit_id: str, worker_id: str, xml: str) -> str:
    return hashlib.sha256(f"{hit_id}\n{worker_id}\n{xml}".encode()).hexdigest()


def import_results(backend: HandoffBackend, path: Path) -> HandoffImport:
    """Read a results CSV in MTurk's layout into the hand-off, all rows or none.

    Args:
        backend: The hand-off target.
        path: The results file (``Input.*``, ``Answer.*``, ``WorkerId``, ``AssignmentId``;
            optional ``AcceptTime``, ``SubmitTime``).

    Returns:
        The :class:`HandoffImport`.

    Raises:
        InputError: The file cannot be read or has no header.
        ResultsError: Some rows cannot be used; ``problems`` names each by line.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the results file ({exc}); give a UTF-8 CSV") from exc
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if not any(c.startswith("Input.") for c in header):
        missing.append("Input.*")
    if not any(c.startswith("Answer.") for c in header):
        missing.append("Answer.*")
    if missing:
        raise InputError(
            f"{path}:1: results CSV lacks {', '.join(missing)}; export the results in "
            "MTurk's layout (Input.*, Answer.*, WorkerId, AssignmentId)"
        )
    by_key = {row["row_key"]: row for row in backend._read("SELECT * FROM handoff_hits")}
    pages: dict[str, _Page] = {}
    known = {
        row["assignment_id"]: row["content_hash"]
        for row in backend._read("SELECT assignment_id, content_hash FROM handoff_assignments")
    }
    problems: list[str] = []
    fresh: list[tuple[object, ...]] = []
    seen: dict[str, tuple[int, str]] = {}
    report = HandoffImport(path)
    for record in reader:
        line = reader.line_num
        report.rows += 1
        where = f"{path}:{line}"
        assignment_id = (record.get("AssignmentId") or "").strip()
        worker_id = (record.get("WorkerId") or "").strip()
        if not assignment_id:
            problems.append(f"{where}: empty AssignmentId; every result needs its own id")
            continue
        if not worker_id:
            problems.append(f"{where}: assignment {assignment_id} has no WorkerId; fill it in")
            continue
        inputs = {
            k[len("Input.") :]: v or "" for k, v in record.items() if k and k.startswith("Input.")
        }
        hit = by_key.get(_row_key({k: v for k, v in inputs.items() if v.strip()}))
        if hit is None:
            problems.append(
                f"{where}: assignment {assignment_id}: its Input.* values match no HIT of this "
                "hand-off; keep the Input columns exactly as exported"
            )
            continue
        page = pages.setdefault(hit["template"], _page_of(hit["template"]))
        answers: dict[str, str] = {}
        bad = False
        for name in page.fields:
            value = (record.get(f"Answer.{name}") or "").strip()
            if not value:
                problems.append(f"{where}: assignment {assignment_id} has no Answer.{name}")
                bad = True
            elif normalise(value, page.task, page.labels) is None:
                offered = (
                    "yes or no" if page.task == "binary" else "class names joined by |, or none"
                )
                problems.append(
                    f"{where}: assignment {assignment_id}: Answer.{name} = {value!r} is not an "
                    f"answer this HIT offered ({offered})"
                )
                bad = True
            answers[name] = value
        if bad:
            continue
        xml = answers_xml(answers)
        digest = _content_hash(hit["hit_id"], worker_id, xml)
        earlier = seen.get(assignment_id) or (
            (0, known[assignment_id]) if assignment_id in known else None
        )
        if earlier is not None:
            if earlier[1] != digest:
                first = f"line {earlier[0]}" if earlier[0] else "an earlier import"
                problems.append(
                    f"{where}: assignment {assignment_id} appears in {first} with other "
                    "content; an assignment id must name one result"
                )
            else:
                report.known += 1
            continue
        seen[assignment_id] = (line, digest)
        fresh.append(
            (
                assignment_id,
                hit["hit_id"],
                worker_id,
                xml,
                digest,
                _time(record.get("AcceptTime")),
                _time(record.get("SubmitTime")),
                f"{path.name}:{line}",
            )
        )
    if problems:
        raise ResultsError(
            f"{path}: {len(problems)} row problem(s), nothing imported; first: {problems[0]}",
            problems,
        )
    with backend._lock, backend._conn:
        backend._conn.executemany(
            "INSERT INTO handoff_assignments (assignment_id, hit_id, worker_id, answer_xml, "
            "content_hash, accept_time, submit_time, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            fresh,
        )
    report.added = len(fresh)
    return report


def _time(text: str | None) -> str | None:
    """An MTurk results time (``Thu Dec 03 10:00:00 PST 2026``) or ISO time, as ISO UTC."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        return _iso(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        pass
    parts = value.split()
    if len(parts) == 6:
        try:
            parsed = datetime.strptime(" ".join(parts[:4] + parts[5:]), "%a %b %d %H:%M:%S %Y")
            return _iso(parsed.replace(tzinfo=UTC))
        except ValueError:
            return None
    return None
