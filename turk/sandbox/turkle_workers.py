"""Simulated annotators working in a Turkle server's own worker pages, over HTTP.

The same population and answer model as :mod:`turk.sandbox.workers` (truth by the
SHA-256 of each image, the real crowds' accuracy), but each annotator is a Turkle user:
it logs in through Turkle's login form, finds batches on Turkle's index page, accepts
the next task (``/batch/<id>/accept_next_task/``), reads the task's form page and posts
it back with Turkle's CSRF token, as a browser does. Accounts are made (or their
password reset) through Turkle's REST API with an admin token.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from turk.sandbox.errors import SandboxError
from turk.sandbox.workers import (
    CROWD_ACCURACY,
    SimulatedWorker,
    WorkersResult,
    _Session,
    load_truth,
    make_population,
    read_hit_form,
)

__all__ = ["TurkleAnnotator", "ensure_accounts", "run_turkle_workers"]

_CSRF = re.compile(r'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
_ASSIGNMENT = re.compile(r"/task/(\d+)/assignment/(\d+)/")
_BATCH_LINK = re.compile(r"/batch/(\d+)/accept_next_task/")


def ensure_accounts(url: str, token: str, usernames: Sequence[str], password: str) -> None:
    """Make sure each user exists on the Turkle server with ``password``.

    Args:
        url: The server's base URL.
        token: An admin's API token.
        usernames: The accounts (letters, digits and ``_``).
        password: The password they get.

    Raises:
        SandboxError: The API refused.
    """
    headers = {"Authorization": f"Token {token}", "Connection": "close"}
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=30) as api:
        for name in usernames:
            found = api.get(f"/api/users/username/{name}/")
            if found.status_code == 200:
                answer = api.patch(f"/api/users/{found.json()['id']}/", json={"password": password})
            else:
                answer = api.post("/api/users/", json={"username": name, "password": password})
            if answer.status_code >= 400:
                raise SandboxError(f"Turkle refused account {name}: {answer.text[:200]}")


@dataclass
class TurkleAnnotator:
    """One Turkle user's browser session (cookies, CSRF) on the worker pages.

    Attributes:
        url: The server's base URL.
        username: The account.
        password: Its password.
    """

    url: str
    username: str
    password: str
    http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        if self.http is None:
            # Connection: close, as turk.crowd.turkle explains (Django's server and
            # delayed ACKs); the session lives in the cookies.
            self.http = httpx.Client(
                base_url=self.url.rstrip("/"), timeout=30, headers={"Connection": "close"}
            )
            page = self.http.get("/login/")
            page.raise_for_status()
            posted = self.http.post(
                "/login/",
                data={
                    "username": self.username,
                    "password": self.password,
                    "csrfmiddlewaretoken": _csrf(page.text, "/login/"),
                },
                headers={"Referer": f"{self.url.rstrip('/')}/login/"},
            )
            if posted.status_code != 302:
                raise SandboxError(f"Turkle login of {self.username} failed")
        return self.http

    def close(self) -> None:
        """Close the session."""
        if self.http is not None:
            self.http.close()
            self.http = None

    def batches(self) -> list[str]:
        """Batch ids Turkle's index page offers this user, in page order."""
        page = self._client().get("/")
        page.raise_for_status()
        return list(dict.fromkeys(_BATCH_LINK.findall(page.text)))

    def accept(self, batch_id: str) -> tuple[str, str] | None:
        """Accept the batch's next task; return ``(task id, assignment id)`` or None."""
        answer = self._client().get(f"/batch/{batch_id}/accept_next_task/")
        match = _ASSIGNMENT.search(answer.headers.get("location", ""))
        if answer.status_code != 302 or match is None:
            return None
        return match.group(1), match.group(2)

    def page(self, task_id: str, assignment_id: str) -> str:
        """The task's form page (the populated template inside Turkle's form)."""
        page = self._client().get(f"/task/{task_id}/assignment/iframe/{assignment_id}/")
        page.raise_for_status()
        return page.text

    def submit(
        self, task_id: str, assignment_id: str, fields: Sequence[tuple[str, str]], page: str
    ) -> bool:
        """Post the task's form; True when Turkle took it."""
        path = f"/task/{task_id}/assignment/{assignment_id}/"
        data: dict[str, list[str]] = {"csrfmiddlewaretoken": [_csrf(page, path)]}
        for name, value in fields:
            data.setdefault(name, []).append(value)
        posted = self._client().post(
            path,
            data=data,
            headers={"Referer": f"{self.url.rstrip('/')}{path}"},
        )
        return (
            posted.status_code == 302
            and _ASSIGNMENT.search(posted.headers.get("location", "")) is None
        )


def _csrf(page: str, where: str) -> str:
    match = _CSRF.search(page)
    if match is None:
        raise SandboxError(f"Turkle page {where} has no CSRF token")
    return match.group(1)


def run_turkle_workers(
    url: str,
    token: str,
    truth: Path,
    *,
    n: int = 10,
    seed: int = 0,
    accuracy: tuple[float, float] = CROWD_ACCURACY,
    spammers: float = 0.0,
    clickers: float = 0.0,
    answer_time: tuple[float, float] = (0.0, 0.0),
    on_progress: Callable[[int], None] | None = None,
) -> WorkersResult:
    """Let a simulated population work through every task Turkle offers them.

    Workers take turns (one task each per round) until none can take another.

    Args:
        url: The Turkle server's base URL.
        token: An admin's API token (to make the annotators' accounts).
        truth: Truth file (``image,concept,file``).
        n: Number of annotators (Turkle users ``ASIM<seed>W<index>``).
        seed: Seed of their choices.
        accuracy: Range of honest annotators' accuracy.
        spammers: Share answering at random.
        clickers: Share answering yes to everything.
        answer_time: Range of seconds each spends per task.
        on_progress: Called with 1 after each submitted task.

    Returns:
        The run's counts.

    Raises:
        SandboxError: Bad settings, an unreadable truth file, an unreachable server, or a
            task page that does not follow the HIT HTML contract.
    """
    index = load_truth(Path(truth))
    population = make_population(n, seed, accuracy, spammers, clickers, answer_time)
    result = WorkersResult(workers=len(population))
    for worker in population:
        result.by_kind[worker.kind] = result.by_kind.get(worker.kind, 0) + 1
    password = secrets.token_urlsafe(12)
    session = _Session(url, index, random.Random(seed + 1))
    people: dict[str, TurkleAnnotator] = {}
    try:
        ensure_accounts(url, token, [w.worker_id for w in population], password)
        people = {w.worker_id: TurkleAnnotator(url, w.worker_id, password) for w in population}
        active = list(population)
        while active:
            still = []
            for worker in active:
                if _work_one(session, people[worker.worker_id], worker, result):
                    still.append(worker)
                    if on_progress is not None:
                        on_progress(1)
            active = still
    except httpx.HTTPError as exc:
        raise SandboxError(f"{url}: Turkle did not answer ({exc}); is it running?") from exc
    finally:
        for person in people.values():
            person.close()
        session.close()
    return result


def _work_one(
    session: _Session, person: TurkleAnnotator, worker: SimulatedWorker, result: WorkersResult
) -> bool:
    """Accept, read, answer and submit one task; False when none is left for the worker."""
    for batch_id in person.batches():
        accepted = person.accept(batch_id)
        if accepted is None:
            continue
        result.accepted += 1
        task_id, assignment_id = accepted
        page = person.page(task_id, assignment_id)
        form = read_hit_form(page)
        if form.task not in ("binary", "multi") or not form.items:
            raise SandboxError(
                f"Turkle task {task_id}: the page does not follow the HIT HTML contract "
                "(no data-task root or no data-item items)"
            )
        answered = {name for name, _ in form.items}
        fields = [(k, v) for k, v in form.hidden if k not in answered]
        fields += session.answer(worker, form, f"{person.url.rstrip('/')}/", result)
        if worker.answer_time > 0:
            time.sleep(worker.answer_time)
        if not person.submit(task_id, assignment_id, fields, page):
            result.refused += 1
            return False
        result.submitted += 1
        result.submitted_by_worker[worker.worker_id] = (
            result.submitted_by_worker.get(worker.worker_id, 0) + 1
        )
        worker.done += 1
        return True
    return False
