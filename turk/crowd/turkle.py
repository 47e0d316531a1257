"""The ``turkle`` target: a Turkle server for an in-house team, through its REST API.

Turkle runs MTurk-style batch templates for a lab's own annotators. It pays nobody,
has no HIT lifetime, no review and no bonuses, and substitutes each row's values into
the template without escaping. How turk's HITs map onto it:

- a HIT type is turk's own (its id is a hash of the properties, as MTurk finds equal
  types); a **project** is made per HIT type and batch template (named
  ``<title> · <template> [<type id>:<template hash>]``), holding the bare HIT fragment
  (:class:`~turk.crowd.backend.HitPage`; Turkle adds its own form);
- a HIT is a **batch** of that project with one task, the HIT's escaped row, and
  ``assignments_per_task`` = the HIT's assignments; the batch's name carries turk's
  annotation and the HIT's expiry, its file name the idempotency token (how a rerun
  finds what an earlier request created);
- expiring a HIT deactivates its batch; reopening activates it; Turkle's API cannot
  delete a batch, so deleting marks its name and deactivates it;
- a qualification type is a Turkle **group**; a project whose HIT type requires one is
  open to that group only (Turkle's custom permissions);
- approve, reject and bonus change nothing remote: turk records them in the ledger
  (:data:`~turk.crowd.backend.UNPAID_TARGETS`); blocking removes the worker from the
  user permissions of turk's projects where they are listed (Turkle cannot exclude one
  user from a project open to everyone; the ledger keeps the block);
- answers come from the batch's results CSV (``Answer.*`` columns, ``Turkle.Username``
  as the worker id) turned into QuestionFormAnswers XML by
  :func:`turk.crowd.answers.answers_xml`.

The API token comes from the environment (``TURKLE_TOKEN``, or the variable named by
``crowd.turkle.token_env``); it is never written to the ledger or printed.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from turk.crowd.answers import answers_xml
from turk.crowd.backend import (
    ASSIGNMENT_STATUSES,
    TURKLE,
    AssignmentInfo,
    BonusInfo,
    CallStats,
    DuplicateRequestError,
    HitInfo,
    HitPage,
    HitTypeSpec,
    extend_refusal,
)
from turk.errors import ConfigError, CrowdError

__all__ = ["TOKEN_ENV", "URL_ENV", "TurkleBackend", "connect_turkle", "turkle_token"]

TOKEN_ENV = "TURKLE_TOKEN"
"""The environment variable holding the Turkle API token unless the config names another."""

URL_ENV = "TURKLE_URL"
"""The environment variable a command falls back to for the Turkle server's URL."""

ANNOTATION_COLUMN = "turk_annotation"
"""Input column every task carries: turk's annotation of the HIT (seen in Turkle's CSVs)."""

_PROJECT_NAME = re.compile(r"\[(T[0-9a-f]{20}):([0-9a-f]{12})\]$")
_BATCH_NAME = re.compile(r"^(?P<deleted>\[deleted\] )?(?P<annotation>.*) \[until (?P<until>\S+)\]$")
_GROUP_ID = re.compile(r"^turkle-group-(\d+)$")
_GRANTING = frozenset({"Exists", "EqualTo", "GreaterThanOrEqualTo", "GreaterThan", "In"})
_TIME_FORMAT = "%a %b %d %H:%M:%S %Z %Y"


def turkle_token(token_env: str | None = None) -> str:
    """Read the Turkle API token from the environment.

    Args:
        token_env: Name of the variable holding it (``crowd.turkle.token_env``); None
            for :data:`TOKEN_ENV`.

    Returns:
        The token.

    Raises:
        ConfigError: The variable is unset or empty.
    """
    name = token_env or TOKEN_ENV
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"target turkle: environment variable {name} holds no Turkle API token; export "
            "it (the 'token' file of 'turk turkle serve', or Turkle admin > Tokens)"
        )
    return value


def _type_id(spec: HitTypeSpec) -> str:
    return "T" + hashlib.sha256(spec.canonical().encode()).hexdigest()[:20]


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _parse_csv_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text.replace("UTC", "").strip(), "%a %b %d %H:%M:%S %Y").replace(
            tzinfo=UTC
        )
    except ValueError:
        return None


def _ascii(text: str, *, html: bool = False) -> str:
    """``text`` in ASCII: HTML character references (``html``), else accents dropped."""
    if html:
        return text.encode("ascii", "xmlcharrefreplace").decode("ascii")
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return folded


def _answer_value(value: str) -> str:
    """A results-CSV answer as MTurk sends it: a multi-valued field joined with ``|``."""
    if value.startswith("[") and value.endswith("]"):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
            return "|".join(parsed)
    return value


class TurkleBackend:
    """The crowd interface over one Turkle server's REST API (token authentication).

    Args:
        url: The server's base URL.
        token: An API token of a Turkle admin (staff) account.
        timeout: Seconds to wait for an answer.
        max_attempts: Tries per request when the server cannot be reached or fails (5xx).
    """

    target = TURKLE

    def __init__(
        self, url: str, token: str, *, timeout: float = 30.0, max_attempts: int = 4
    ) -> None:
        self.endpoint_url = url.rstrip("/")
        self.stats = CallStats()
        self.max_attempts = max(1, max_attempts)
        self._http = httpx.Client(
            base_url=self.endpoint_url,
            # One request per connection: Django's server sends a reply's headers and body
            # in two writes, so a kept-alive connection waits out the peer's delayed ACK
            # (40 ms a call on Linux; 3x slower than a fresh loopback connection).
            headers={
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                "Connection": "close",
            },
            timeout=timeout,
        )
        self._lock = threading.Lock()
        self._create_lock = threading.Lock()
        self._specs: dict[str, HitTypeSpec] = {}
        self._projects: dict[str, int] | None = None
        self._project_types: dict[int, str] = {}
        self._tokens: dict[str, int] | None = None
        self._assignment_hits: dict[str, str] = {}

    # -- plumbing ------------------------------------------------------------------------

    def _request(self, op: str, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        from turk.crowd.boto import TransientCrowdError

        with self._lock:
            self.stats.calls[op] = self.stats.calls.get(op, 0) + 1
        for attempt in range(1, self.max_attempts + 1):
            with self._lock:
                self.stats.requests += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == self.max_attempts:
                    raise TransientCrowdError(
                        f"{op} {what}: Turkle at {self.endpoint_url} cannot be reached "
                        f"({type(exc).__name__}); start it or check crowd.turkle.url"
                    ) from exc
            else:
                if response.status_code < 500 or attempt == self.max_attempts:
                    break
            time.sleep(0.2 * 2 ** (attempt - 1))
        if response.status_code in (401, 403):
            raise CrowdError(
                f"{op}: Turkle refused the API token ({response.status_code}); export a "
                "token of a staff account in TURKLE_TOKEN (or crowd.turkle.token_env)"
            )
        if response.status_code >= 500:
            raise TransientCrowdError(
                f"{op} {what}: Turkle answered {response.status_code}; rerun later"
            )
        if response.status_code >= 400:
            raise CrowdError(
                f"{op} {what}: Turkle answered {response.status_code}: {response.text[:300]}"
            )
        return response

    def _list(self, op: str, path: str) -> list[dict[str, Any]]:
        """Every object of a list endpoint, paginated or not."""
        out: list[dict[str, Any]] = []
        next_url: str | None = path
        while next_url:
            data = self._request(op, path, "GET", next_url).json()
            if isinstance(data, list):
                return out + data
            out.extend(data.get("results") or [])
            next_url = data.get("next")
        return out

    # -- money ---------------------------------------------------------------------------

    def balance(self) -> Decimal | None:
        """Check the server answers with this token; Turkle holds no money (None)."""
        self._request("GetAccountBalance", "", "GET", "/api/projects/", params={"page": 1})
        return None

    # -- HIT types and projects ----------------------------------------------------------

    def create_hit_type(self, spec: HitTypeSpec) -> str:
        """Return turk's id for these properties (nothing is sent: Turkle has no types)."""
        type_id = _type_id(spec)
        self._specs[type_id] = spec
        return type_id

    def _load_projects(self) -> dict[str, int]:
        if self._projects is None:
            found: dict[str, int] = {}
            for project in self._list("ListProjects", "/api/projects/"):
                match = _PROJECT_NAME.search(str(project.get("name", "")))
                if match:
                    found[f"{match.group(1)}:{match.group(2)}"] = int(project["id"])
                    self._project_types[int(project["id"])] = match.group(1)
            self._projects = found
        return self._projects

    def _project_for(self, hit_type_id: str, page: HitPage) -> int:
        template_hash = hashlib.sha256(page.template.encode()).hexdigest()[:12]
        key = f"{hit_type_id}:{template_hash}"
        projects = self._load_projects()
        if key in projects:
            return projects[key]
        spec = self._specs.get(hit_type_id)
        title = spec.title if spec else hit_type_id
        hours = max(1, -(-spec.assignment_duration_s // 3600)) if spec else 24
        groups = self._required_groups(spec) if spec else []
        body = {
            "name": _ascii(f"{title} - {page.name}")[:980] + f" [{key}]",
            "html_template": page.template,
            "filename": f"{page.name}.html",
            "assignments_per_task": 1,
            "login_required": True,
            "allotted_assignment_time": hours,
            "active": True,
        }
        project = self._request("CreateProject", page.name, "POST", "/api/projects/", json=body)
        project_id = int(project.json()["id"])
        if groups:
            self._request(
                "SetProjectPermissions",
                page.name,
                "PUT",
                f"/api/projects/{project_id}/permissions/",
                json={"users": [], "groups": groups},
            )
        projects[key] = project_id
        self._project_types[project_id] = hit_type_id
        return project_id

    @staticmethod
    def _required_groups(spec: HitTypeSpec) -> list[int]:
        groups: list[int] = []
        for requirement in spec.qualifications:
            match = _GROUP_ID.match(requirement.type_id)
            if match is None:
                continue  # Amazon's system qualifications: a lab's own annotators have none
            if requirement.comparator not in _GRANTING:
                raise ConfigError(
                    f"qualification {requirement.type_id} {requirement.comparator}: Turkle can "
                    "only open a project to a group, not exclude one; use "
                    "qualifications.require instead of exclude on target turkle"
                )
            groups.append(int(match.group(1)))
        return sorted(set(groups))

    # -- HITs ------------------------------------------------------------------------------

    def _load_tokens(self) -> dict[str, int]:
        if self._tokens is None:
            self._tokens = {
                str(b.get("filename", "")).removesuffix(".csv"): int(b["id"])
                for b in self._list("ListBatches", "/api/batches/")
            }
        return self._tokens

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
        """Create a batch of one task for the HIT (in its project, made when missing).

        Raises:
            DuplicateRequestError: A batch with this token exists (its id is given).
            CrowdError: No ``page`` (Turkle cannot show ``question_xml``), or Turkle
                refused the batch.
        """
        if page is None:
            raise CrowdError(
                f"CreateHIT {annotation}: target turkle needs the HIT's batch-template page"
            )
        # One creation at a time: the token check and the creation must not interleave.
        with self._create_lock:
            tokens = self._load_tokens()
            if token in tokens:
                raise DuplicateRequestError(
                    f"CreateHIT {annotation}: token {token} was used", str(tokens[token])
                )
            project_id = self._project_for(hit_type_id, page)
            columns = sorted(page.row)
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow([*columns, ANNOTATION_COLUMN])
            # Values are HTML already: a character reference shows the same character, and
            # keeps Turkle's CSV answers ASCII (see _results).
            writer.writerow(
                [*(_ascii(page.row[c], html=True) for c in columns), _ascii(annotation, html=True)]
            )
            spec = self._specs.get(hit_type_id)
            until = datetime.now(UTC) + timedelta(seconds=lifetime_s)
            body = {
                "name": f"{annotation} [until {_iso(until)}]",
                "project": project_id,
                "filename": f"{token}.csv",
                "csv_text": buffer.getvalue(),
                "assignments_per_task": max_assignments,
                "login_required": True,
                "allotted_assignment_time": (
                    max(1, -(-spec.assignment_duration_s // 3600)) if spec else 24
                ),
            }
            batch = self._request("CreateHIT", annotation, "POST", "/api/batches/", json=body)
            data = batch.json()
            tokens[token] = int(data["id"])
        return self._info(data, finished=0)

    def _info(self, batch: dict[str, Any], finished: int) -> HitInfo:
        name = str(batch.get("name", ""))
        match = _BATCH_NAME.match(name)
        annotation = match.group("annotation") if match else name
        until = _parse_iso(match.group("until")) if match else None
        deleted = bool(match and match.group("deleted"))
        project_id = int(batch["project"])
        if project_id not in self._project_types:
            self._projects = None
            self._load_projects()
        maximum = int(batch.get("assignments_per_task") or 1)
        if deleted:
            status = "Disposed"
        elif (
            not batch.get("active", True)
            or batch.get("completed")
            or (until is not None and until <= datetime.now(UTC))
        ):
            status = "Reviewable"
        else:
            status = "Assignable"
        return HitInfo(
            hit_id=str(batch["id"]),
            hit_type_id=self._project_types.get(project_id, ""),
            status=status,
            max_assignments=maximum,
            available=max(0, maximum - finished),
            pending=0,
            completed=0,
            annotation=annotation,
            expiration=until,
        )

    def _batch(self, op: str, hit_id: str) -> dict[str, Any]:
        if not hit_id.isdigit():
            raise CrowdError(f"{op} {hit_id}: no such HIT on Turkle (its HIT ids are numbers)")
        data: dict[str, Any] = self._request(op, hit_id, "GET", f"/api/batches/{hit_id}/").json()
        return data

    def _finished(self, hit_id: str) -> int:
        progress = self._request(
            "GetBatchProgress", hit_id, "GET", f"/api/batches/{hit_id}/progress/"
        ).json()
        return int(progress.get("total_finished_task_assignments", 0))

    def get_hit(self, hit_id: str) -> HitInfo:
        """Return one HIT (its batch and the batch's progress)."""
        batch = self._batch("GetHIT", hit_id)
        return self._info(batch, self._finished(hit_id))

    def list_hits(self) -> Iterator[HitInfo]:
        """Yield every HIT turk made on the server (batches with turk's token file name)."""
        for batch in self._list("ListHITs", "/api/batches/"):
            if not str(batch.get("filename", "")).endswith(".csv"):
                continue
            info = self._info(batch, 0)
            if info.status == "Disposed" or not _BATCH_NAME.match(str(batch.get("name", ""))):
                continue
            yield self._info(batch, self._finished(info.hit_id))

    def list_reviewable_hits(self, hit_type_id: str | None = None) -> Iterator[HitInfo]:
        """Yield HITs no longer offered (expired, deactivated or finished)."""
        for info in self.list_hits():
            if info.status == "Reviewable" and hit_type_id in (None, info.hit_type_id):
                yield info

    # -- assignments ------------------------------------------------------------------------

    def list_assignments(
        self, hit_id: str, statuses: Sequence[str] = ASSIGNMENT_STATUSES
    ) -> Iterator[AssignmentInfo]:
        """Yield the HIT's submitted assignments from the batch's results CSV.

        Turkle has no review, so every assignment is ``Submitted``; turk's decisions
        live in the ledger.
        """
        if not hit_id.isdigit():
            raise CrowdError(f"ListAssignmentsForHIT {hit_id}: no such HIT on Turkle")
        text = self._results(hit_id)
        if "Submitted" not in statuses or not text.strip():
            return
        for row in csv.DictReader(io.StringIO(text)):
            fields = {
                key.removeprefix("Answer."): _answer_value(value or "")
                for key, value in row.items()
                if key and key.startswith("Answer.") and value
            }
            assignment_id = str(row.get("AssignmentId", ""))
            self._assignment_hits[assignment_id] = hit_id
            yield AssignmentInfo(
                assignment_id=assignment_id,
                worker_id=str(row.get("Turkle.Username") or row.get("WorkerId") or ""),
                hit_id=hit_id,
                status="Submitted",
                answer_xml=answers_xml(fields),
                accept_time=_parse_csv_time(str(row.get("AcceptTime", ""))),
                submit_time=_parse_csv_time(str(row.get("SubmitTime", ""))),
            )

    def _results(self, hit_id: str) -> str:
        """A batch's results CSV, whole.

        Turkle 3.1 sends the CSV with a Content-Length counted in characters, not bytes,
        so a CSV holding non-ASCII text (an answer in another script) arrives cut short.
        Such an answer is read again to the end of the stream, which Django's server
        sends whole; every request closes its connection, so no leftover bytes remain.
        """
        path = f"/api/batches/{hit_id}/results/"
        response = self._request("ListAssignmentsForHIT", hit_id, "GET", path)
        text = response.text
        if len(text) == len(response.content):
            return text
        return self._read_to_end(path)

    def _read_to_end(self, path: str) -> str:
        import socket
        import ssl
        from urllib.parse import urlparse

        parsed = urlparse(self.endpoint_url)
        host = parsed.hostname or "127.0.0.1"
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        token = self._http.headers["Authorization"]
        request = (
            f"GET {parsed.path.rstrip('/')}{path} HTTP/1.0\r\nHost: {parsed.netloc}\r\n"
            f"Authorization: {token}\r\nConnection: close\r\n\r\n"
        ).encode()
        with socket.create_connection((host, port), timeout=30) as raw:
            sock = (
                ssl.create_default_context().wrap_socket(raw, server_hostname=host)
                if parsed.scheme == "https"
                else raw
            )
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            raise CrowdError(f"ListAssignmentsForHIT {path}: Turkle refused the results")
        return body.decode("utf-8")

    def get_assignment(self, assignment_id: str) -> AssignmentInfo:
        """Return one assignment (Turkle lists them per batch only: found by scanning)."""
        hit_ids = (
            [self._assignment_hits[assignment_id]]
            if assignment_id in (self._assignment_hits)
            else [h.hit_id for h in self.list_hits()]
        )
        for hit_id in hit_ids:
            for info in self.list_assignments(hit_id):
                if info.assignment_id == assignment_id:
                    return info
        raise CrowdError(f"GetAssignment {assignment_id}: no such assignment on Turkle")

    def approve(self, assignment_id: str, feedback: str | None = None) -> None:
        """Nothing to send: Turkle pays nobody; the ledger records the approval."""

    def reject(self, assignment_id: str, feedback: str) -> None:
        """Nothing to send: Turkle has no review; the ledger records the rejection."""

    def send_bonus(
        self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str
    ) -> None:
        """Nothing to send: Turkle pays nobody; the ledger records the bonus decision."""

    def list_bonuses(self, assignment_id: str) -> list[BonusInfo]:
        """Turkle holds no bonuses (the ledger has turk's decisions)."""
        return []

    def list_hit_bonuses(self, hit_id: str) -> list[BonusInfo]:
        """Turkle holds no bonuses (the ledger has turk's decisions)."""
        return []

    # -- workers and groups ----------------------------------------------------------------

    def _user_id(self, op: str, username: str) -> int:
        if not re.fullmatch(r"\w+", username):
            raise CrowdError(f"{op} {username}: not a Turkle user name (letters, digits, _)")
        try:
            data = self._request(op, username, "GET", f"/api/users/username/{username}/").json()
        except CrowdError as exc:
            if "404" not in str(exc):
                raise
            raise CrowdError(
                f"{op} {username}: no Turkle user of that name; create the annotator's "
                "account first (Turkle admin > Users)"
            ) from exc
        return int(data["id"])

    def block_worker(self, worker_id: str, reason: str) -> None:
        """Remove the worker from the user permissions of turk's projects that list them.

        Turkle cannot exclude one user from a project open to every user; such blocks
        are kept in the ledger only.
        """
        user_id = self._user_id("BlockWorker", worker_id)
        for project_id in sorted(set(self._load_projects().values())):
            path = f"/api/projects/{project_id}/permissions/"
            current = self._request("BlockWorker", worker_id, "GET", path).json()
            users = [int(u) for u in current.get("users", [])]
            if user_id in users:
                self._request(
                    "BlockWorker",
                    worker_id,
                    "PUT",
                    path,
                    json={
                        "users": [u for u in users if u != user_id],
                        "groups": current.get("groups", []),
                    },
                )

    def extend_hit(self, hit_id: str, additional: int, token: str) -> None:
        """Refuse: Turkle's API cannot change a batch's assignments per task.

        Raises:
            CrowdError: Always.
        """
        raise CrowdError(f"ExtendHIT {hit_id}: {extend_refusal(TURKLE)}")

    def _patch(self, op: str, hit_id: str, **changes: Any) -> None:
        self._request(op, hit_id, "PATCH", f"/api/batches/{hit_id}/", json=changes)

    def expire_hit(self, hit_id: str) -> None:
        """Deactivate the HIT's batch (work already accepted may still be submitted)."""
        info = self._info(self._batch("UpdateExpirationForHIT", hit_id), 0)
        now = datetime.now(UTC)
        self._patch(
            "UpdateExpirationForHIT",
            hit_id,
            active=False,
            name=f"{info.annotation} [until {_iso(now)}]",
        )

    def update_expiration(self, hit_id: str, expire_at: datetime) -> None:
        """Move the HIT's expiry; a future one activates the batch again."""
        info = self._info(self._batch("UpdateExpirationForHIT", hit_id), 0)
        self._patch(
            "UpdateExpirationForHIT",
            hit_id,
            active=expire_at > datetime.now(UTC),
            name=f"{info.annotation} [until {_iso(expire_at)}]",
        )

    def delete_hit(self, hit_id: str) -> None:
        """Mark the HIT's batch deleted and deactivate it (Turkle cannot delete one)."""
        info = self._info(self._batch("DeleteHIT", hit_id), 0)
        until = _iso(info.expiration or datetime.now(UTC))
        self._patch(
            "DeleteHIT", hit_id, active=False, name=f"[deleted] {info.annotation} [until {until}]"
        )

    def find_qualification_type(self, name: str) -> str | None:
        """Return the id of the Turkle group called ``name``, or None."""
        for group in self._list("ListQualificationTypes", "/api/groups/"):
            if group.get("name") == name:
                return f"turkle-group-{group['id']}"
        return None

    def create_qualification_type(self, name: str, description: str) -> str:
        """Create a Turkle group called ``name`` and return its id."""
        data = self._request(
            "CreateQualificationType",
            name,
            "POST",
            "/api/groups/",
            json={"name": name, "users": []},
        ).json()
        return f"turkle-group-{data['id']}"

    def grant_qualification(self, type_id: str, worker_id: str, value: int = 1) -> None:
        """Add an existing Turkle user to the group.

        Raises:
            CrowdError: Not a Turkle group id, or no such user.
        """
        match = _GROUP_ID.match(type_id)
        if match is None:
            raise CrowdError(f"AssociateQualificationWithWorker {type_id}: not a Turkle group")
        user_id = self._user_id("AssociateQualificationWithWorker", worker_id)
        self._request(
            "AssociateQualificationWithWorker",
            worker_id,
            "POST",
            f"/api/groups/{match.group(1)}/users/",
            json={"users": [user_id]},
        )


def connect_turkle(url: str, token: str, *, timeout: float = 30.0) -> TurkleBackend:
    """Open the ``turkle`` target.

    Args:
        url: The server's base URL (``crowd.turkle.url``).
        token: The API token (:func:`turkle_token`).
        timeout: Seconds to wait for an answer.

    Returns:
        The backend.

    Raises:
        ConfigError: No URL.
    """
    if not url:
        raise ConfigError(
            "target turkle: no server URL; set crowd.turkle.url in turk.yaml or pass "
            "--endpoint-url (e.g. the URL 'turk turkle serve' prints)"
        )
    return TurkleBackend(url, token, timeout=timeout)
