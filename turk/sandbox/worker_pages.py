"""The worker side: HIT list, preview, accept, the HIT framed as MTurk frames it, submit."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import defusedxml.ElementTree as SafeET
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from turk.sandbox import market
from turk.sandbox.store import Store

WORKER_ID = re.compile(r"A[A-Z0-9]{1,63}")
LOCALE = re.compile(r"([A-Za-z]{2})(?:-([A-Za-z]{2}))?")
COOKIE = "workerId"

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)


def _page(name: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("worker_id", None)
    return HTMLResponse(_templates.get_template(name).render(**values), status_code=status)


def _message(heading: str, message: str, status: int, worker_id: str | None = None) -> HTMLResponse:
    css = "error" if status >= 400 else "ok"
    return _page(
        "message.html", status, heading=heading, message=message, css=css, worker_id=worker_id
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class WorkerPages:
    """Starlette endpoints of the worker side, over one store."""

    def __init__(self, store: Store, sweep_interval: float = 0.0) -> None:
        """Bind the pages to a store.

        Args:
            store: The sandbox store.
            sweep_interval: Minimum seconds between sweeps of due transitions.
        """
        self.store = store
        self.sweep_interval = sweep_interval

    def routes(self) -> list[Route]:
        """Return the routes of the worker side.

        Returns:
            Starlette routes.
        """
        return [
            Route("/worker", self.hit_list, methods=["GET"]),
            Route("/worker/hits/{hit_id}", self.preview, methods=["GET"]),
            Route("/worker/hits/{hit_id}/accept", self.accept, methods=["POST"]),
            Route("/worker/assignments/{assignment_id}", self.work, methods=["GET"]),
            Route("/worker/assignments/{assignment_id}/return", self.give_back, methods=["POST"]),
            Route("/worker/question/{hit_id}", self.question, methods=["GET"]),
            Route(
                "/worker/qualifications/{type_id}/request",
                self.request_qualification,
                methods=["POST"],
            ),
            Route("/mturk/externalSubmit", self.external_submit, methods=["POST"]),
        ]

    # -- identity ------------------------------------------------------------------------

    def _worker(self, request: Request) -> str | None:
        worker_id = request.query_params.get("workerId") or request.cookies.get(COOKIE)
        if worker_id is None or not WORKER_ID.fullmatch(worker_id):
            return None
        locale = request.query_params.get("locale")
        if locale:
            match = LOCALE.fullmatch(locale)
            if match:
                market.set_worker_locale(self.store, worker_id, match.group(1), match.group(2))
        return worker_id

    def _remember(self, response: Response, worker_id: str) -> Response:
        response.set_cookie(COOKIE, worker_id, httponly=True, samesite="lax")
        return response

    def _signin(self, request: Request) -> HTMLResponse:
        given = request.query_params.get("workerId")
        message = f'"{given}" is not a worker id.' if given else ""
        return _page("login.html", 400 if given else 200, message=message)

    # -- pages ---------------------------------------------------------------------------

    async def hit_list(self, request: Request) -> Response:
        """GET /worker: the HITs this worker can take now, and their work in progress."""
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        market.sweep(self.store, self.sweep_interval)
        limit = min(int(request.query_params.get("limit", "50") or 50), 500)
        with self.store.lock:
            conn = self.store.conn
            now = self.store.now()
            in_progress = conn.execute(
                "SELECT a.id, t.title FROM assignments a JOIN hits h ON h.id = a.hit_id "
                "JOIN hit_types t ON t.id = h.hit_type_id WHERE a.worker_id = ? "
                "AND a.status = 'Accepted' ORDER BY a.rowid",
                (worker_id,),
            ).fetchall()
            hits: list[dict[str, Any]] = []
            if not market.is_blocked(conn, worker_id):
                rows = conn.execute(
                    f"{market.HIT_SELECT} WHERE h.disposed = 0 AND h.reviewing = 0 "
                    "AND h.expiration > ? AND NOT EXISTS (SELECT 1 FROM assignments w "
                    "WHERE w.hit_id = h.id AND w.worker_id = ? "
                    "AND w.status NOT IN ('Abandoned', 'Returned')) ORDER BY h.rowid",
                    (now, worker_id),
                )
                for row in rows:
                    counts = market.hit_counts(row)
                    if counts.available <= 0:
                        continue
                    requirements = json.loads(row["qualification_requirements"])
                    if market.unmet_requirement(conn, requirements, worker_id, "Discover"):
                        continue
                    hits.append(
                        {
                            "id": row["id"],
                            "title": row["title"],
                            "reward": row["reward"],
                            "available": counts.available,
                            "duration": row["assignment_duration"],
                        }
                    )
                    if len(hits) >= limit:
                        break
        response = _page(
            "hits.html",
            worker_id=worker_id,
            hits=hits,
            in_progress=[dict(r) for r in in_progress],
            submitted=request.query_params.get("submitted"),
        )
        return self._remember(response, worker_id)

    def _frame(
        self, request: Request, hit: Any, assignment_id: str, worker_id: str | None
    ) -> tuple[str, str]:
        """Return (iframe src, iframe height) for a HIT, with MTurk's query parameters."""
        base = str(request.base_url).rstrip("/")
        query = {"assignmentId": assignment_id, "hitId": hit["id"]}
        if worker_id and assignment_id != market.PREVIEW_ASSIGNMENT_ID:
            query["workerId"] = worker_id
        query["turkSubmitTo"] = base
        root = SafeET.fromstring(hit["question"])
        kind = _local(root.tag)
        values = {_local(child.tag): (child.text or "").strip() for child in root}
        height = values.get("FrameHeight", "600")
        if height in ("", "0"):
            height = "800"
        if kind == "ExternalQuestion":
            url = values["ExternalURL"]
            if market.external_url_problem(url) is not None:
                # CreateHIT refuses such URLs; a state file from an older sandbox may hold one.
                return "about:blank", height
            joiner = "&" if "?" in url else "?"
            return f"{url}{joiner}{urlencode(query)}", height
        return f"{base}/worker/question/{hit['id']}?{urlencode(query)}", height

    def _task_page(
        self, request: Request, hit: Any, worker_id: str, assignment: Any | None
    ) -> Response:
        assignment_id = market.PREVIEW_ASSIGNMENT_ID if assignment is None else assignment["id"]
        src, height = self._frame(request, hit, assignment_id, worker_id)
        deadline = None
        if assignment is not None:
            deadline = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(assignment["deadline"]))
        response = _page(
            "task.html",
            worker_id=worker_id,
            title=hit["title"],
            description=hit["description"],
            reward=hit["reward"],
            duration=hit["assignment_duration"],
            hit_id=hit["id"],
            assignment_id=None if assignment is None else assignment["id"],
            deadline=deadline,
            frame_src=src,
            frame_height=height,
        )
        return self._remember(response, worker_id)

    async def preview(self, request: Request) -> Response:
        """GET /worker/hits/{hit_id}: preview (assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE)."""
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        market.sweep(self.store, self.sweep_interval)
        hit_id = request.path_params["hit_id"]
        with self.store.lock:
            row = self.store.conn.execute(
                f"{market.HIT_SELECT} WHERE h.id = ?", (hit_id,)
            ).fetchone()
            if row is None:
                return _message("No such HIT", f"HIT {hit_id} does not exist.", 404, worker_id)
            requirements = json.loads(row["qualification_requirements"])
            failed = market.unmet_requirement(self.store.conn, requirements, worker_id, "Preview")
        if failed is not None:
            return _message(
                "Qualification required",
                f"You need qualification {failed['QualificationTypeId']} to preview this HIT.",
                403,
                worker_id,
            )
        return self._task_page(request, row, worker_id, None)

    async def accept(self, request: Request) -> Response:
        """POST /worker/hits/{hit_id}/accept: take an assignment, then show the work page."""
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        market.sweep(self.store, self.sweep_interval)
        try:
            assignment_id = market.accept(self.store, request.path_params["hit_id"], worker_id)
        except market.WorkerRefused as exc:
            return _message("Cannot accept this HIT", str(exc), exc.status, worker_id)
        url = f"/worker/assignments/{assignment_id}?{urlencode({'workerId': worker_id})}"
        return self._remember(RedirectResponse(url, status_code=303), worker_id)

    async def work(self, request: Request) -> Response:
        """GET /worker/assignments/{assignment_id}: the accepted HIT in its iframe."""
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        market.sweep(self.store, self.sweep_interval)
        assignment_id = request.path_params["assignment_id"]
        with self.store.lock:
            conn = self.store.conn
            assignment = conn.execute(
                "SELECT * FROM assignments WHERE id = ?", (assignment_id,)
            ).fetchone()
            if assignment is None or assignment["worker_id"] != worker_id:
                return _message(
                    "No such assignment",
                    f"Assignment {assignment_id} is not yours.",
                    404,
                    worker_id,
                )
            if assignment["status"] != "Accepted":
                return _message(
                    "Assignment closed",
                    f"Assignment {assignment_id} is {assignment['status']}.",
                    409,
                    worker_id,
                )
            hit = conn.execute(
                f"{market.HIT_SELECT} WHERE h.id = ?", (assignment["hit_id"],)
            ).fetchone()
        return self._task_page(request, hit, worker_id, assignment)

    async def give_back(self, request: Request) -> Response:
        """POST /worker/assignments/{assignment_id}/return: return the work unsubmitted."""
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        try:
            market.return_assignment(self.store, request.path_params["assignment_id"], worker_id)
        except market.WorkerRefused as exc:
            return _message("Cannot return", str(exc), exc.status, worker_id)
        return RedirectResponse(f"/worker?{urlencode({'workerId': worker_id})}", status_code=303)

    async def request_qualification(self, request: Request) -> Response:
        """POST /worker/qualifications/{type_id}/request: ask for a qualification.

        An auto-granted type is granted at once; any other waits for the requester's
        AcceptQualificationRequest or RejectQualificationRequest. A posted ``answer``
        field holds the answers to the type's Test (QuestionFormAnswers XML).
        """
        worker_id = self._worker(request)
        if worker_id is None:
            return self._signin(request)
        form = parse_qsl((await request.body()).decode("utf-8", errors="replace"))
        answer = next((v for k, v in form if k == "answer"), None)
        type_id = request.path_params["type_id"]
        try:
            outcome = market.request_qualification(self.store, type_id, worker_id, answer)
        except market.WorkerRefused as exc:
            return _message("Cannot request this qualification", str(exc), exc.status, worker_id)
        if outcome == "granted":
            text = f"Qualification {type_id} was granted."
        else:
            text = f"Your request {outcome} for qualification {type_id} awaits the requester."
        return self._remember(_message("Qualification requested", text, 200, worker_id), worker_id)

    async def question(self, request: Request) -> Response:
        """GET /worker/question/{hit_id}: the HTMLQuestion content (or a QuestionForm page)."""
        hit_id = request.path_params["hit_id"]
        with self.store.lock:
            row = self.store.conn.execute(
                "SELECT question FROM hits WHERE id = ?", (hit_id,)
            ).fetchone()
        if row is None:
            return _message("No such HIT", f"HIT {hit_id} does not exist.", 404)
        root = SafeET.fromstring(row["question"])
        kind = _local(root.tag)
        if kind == "HTMLQuestion":
            content = next((c.text or "" for c in root if _local(c.tag) == "HTMLContent"), "")
            return HTMLResponse(content)
        if kind == "QuestionForm":
            return self._question_form(request, root)
        return _message("External question", "This HIT is hosted elsewhere.", 404)

    def _question_form(self, request: Request, root: Any) -> Response:
        questions = []
        for question in root:
            if _local(question.tag) != "Question":
                continue
            ident, texts = "", []
            selections: list[tuple[str, str]] = []
            for node in question.iter():
                name = _local(node.tag)
                if name == "QuestionIdentifier":
                    ident = (node.text or "").strip()
                elif name == "Text" and node.text and not selections:
                    texts.append(node.text.strip())
                elif name == "Selection":
                    sel_id = next(
                        (c.text or "" for c in node if _local(c.tag) == "SelectionIdentifier"), ""
                    )
                    label = next((c.text or "" for c in node if _local(c.tag) == "Text"), sel_id)
                    selections.append((sel_id.strip(), label.strip()))
            questions.append({"id": ident, "text": " ".join(texts), "selections": selections})
        assignment_id = request.query_params.get("assignmentId", market.PREVIEW_ASSIGNMENT_ID)
        return _page(
            "questionform.html",
            questions=questions,
            assignment_id=assignment_id,
            preview=assignment_id == market.PREVIEW_ASSIGNMENT_ID,
            submit_to=request.query_params.get("turkSubmitTo", str(request.base_url).rstrip("/")),
        )

    async def external_submit(self, request: Request) -> Response:
        """POST /mturk/externalSubmit: record the posted fields as the assignment's answer."""
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            try:
                form = await request.form()
            except AssertionError:
                return _message(
                    "Unsupported form", "Post the form as application/x-www-form-urlencoded.", 415
                )
            pairs = [(k, str(v)) for k, v in form.multi_items()]
        else:
            body = (await request.body()).decode("utf-8", errors="replace")
            pairs = parse_qsl(body, keep_blank_values=True)
        assignment_ids = [v for k, v in pairs if k == "assignmentId"]
        if not assignment_ids:
            return _message("Missing assignmentId", "The form posted no assignmentId field.", 400)
        fields = [(k, v) for k, v in pairs if k != "assignmentId"]
        # The submitter is the worker the form names, else the signed-in worker (cookie):
        # market.submit refuses anyone but the worker holding the assignment.
        posted = [v for k, v in pairs if k == "workerId"]
        worker_id = posted[0] if posted else self._worker(request)
        market.sweep(self.store, self.sweep_interval)
        try:
            hit_id = market.submit(self.store, assignment_ids[0], worker_id, fields)
        except market.WorkerRefused as exc:
            return _message("Submission refused", str(exc), exc.status)
        # As on MTurk, the worker leaves the HIT's frame: the whole window goes back to the
        # HIT list, which says what was submitted.
        back = "/worker?" + urlencode({"workerId": worker_id or "", "submitted": hit_id})
        return _page("submitted.html", hit_id=hit_id, back=back, worker_id=worker_id)
