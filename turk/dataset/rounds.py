"""Curation rounds: fill every cell to its quota, learning from what workers verified.

Round 1 sends each cell's top ``candidates_per_class`` (``turk rank``). After its
answers are reviewed, :func:`plan_round` looks at every labeled cell (concept x bucket)
and either stops it, with a reason, or chooses the next candidates from its pool:

* **stop** when the cell holds its quota of accepted images (``quota``), when its pool
  is empty (``exhausted``: the ranking ends at ``query_depth``), when the expected
  precision of its next candidates is below ``min_yield`` (``yield``), when
  ``max_rounds`` rounds have run (``rounds``), or when sending the batch would cross
  the budget (``budget``);
* **re-rank** the concept's pool from the crowd's verdicts so far: a per-concept
  logistic probe on the stored CLIP embeddings (and the prompt score), fitted on the
  verified items, used when it orders the concept's held-back verdicts (5-fold) at
  least as well as the prompt score does; otherwise, or with too few verdicts of either
  kind, the prompt order is kept and every next candidate is expected at the cell's
  precision at depth (a Beta posterior from the cell's last round, with a prior from
  the concept's other cells);
* **size** the batch as the fewest top candidates whose expected accepted images reach
  the images still missing with probability ``fill_chance`` (a normal approximation of
  the sum of independent Bernoulli trials), so one more round is likely to fill the
  cell without sending much more than needed.

Each decision is a row of the ``rounds`` table (owned here), written in the same
transaction that marks the chosen candidates; a run killed at any point resumes
without choosing or sending anything twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from turk.candidates.pool import candidate_vectors, latest_round, send_in_round
from turk.candidates.tables import candidate_rows
from turk.collection.tables import bucket_ids
from turk.crowd.backend import workforce
from turk.crowd.spend import cell_money
from turk.crowd.tables import answers_by_cell, languages_by_cell
from turk.dataset.results import CrowdResults
from turk.dataset.rules import STOP_REASONS, RoundSettings
from turk.ledger import Ledger, utc_now

__all__ = [
    "CellPlan",
    "RoundPlan",
    "cell_table",
    "cells_now",
    "format_cell_table",
    "plan_round",
    "record_round",
    "round_table",
    "stop_reasons",
]


@dataclass
class CellPlan:
    """The decision for one cell in one round.

    Attributes:
        concept: The concept.
        bucket: The bucket.
        accepted: Accepted images before the round.
        verified: Candidates verified before the round.
        missing: Images still missing to reach the quota.
        pool_left: Candidates left in the pool before the round.
        picks: Image ids chosen, best first (empty when the cell stops).
        expected: Accepted images expected from the picks.
        precision: Expected precision of the picks (or of the next candidate when none).
        method: ``rerank`` (probe) or ``prompt`` (prompt order and the cell's estimate).
        stop: Why the cell stops (a key of :data:`STOP_REASONS`), or None.
    """

    concept: str
    bucket: int
    accepted: int
    verified: int
    missing: int
    pool_left: int
    picks: list[int] = field(default_factory=list)
    expected: float = 0.0
    precision: float = float("nan")
    method: str = "prompt"
    stop: str | None = None


@dataclass
class RoundPlan:
    """What one round sends.

    Attributes:
        number: The round.
        cells: One plan per labeled cell.
        heldout: Per concept, the precision of the better-ranked half of its held-back
            verdicts ordered by prompt score and by the re-ranker: ``(prompt, rerank)``.
    """

    number: int
    cells: list[CellPlan]
    heldout: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def picks(self) -> int:
        """Candidates chosen in all."""
        return sum(len(c.picks) for c in self.cells)


def _cells(rows: pd.DataFrame) -> dict[tuple[str, int], pd.DataFrame]:
    """The candidate rows of each concept x bucket cell, split once."""
    out: dict[tuple[str, int], pd.DataFrame] = {}
    for _, part in rows.groupby(["concept", "bucket"], sort=False):
        first = part.iloc[0]
        out[(str(first["concept"]), int(first["bucket"]))] = part
    return out


def _fill_size(p: np.ndarray, missing: int, chance: float) -> int:
    """Fewest leading candidates whose accepted count reaches ``missing`` with ``chance``."""
    if missing <= 0 or p.size == 0:
        return 0
    mean = np.cumsum(p)
    sd = np.sqrt(np.cumsum(p * (1 - p)))
    z = _normal_quantile(chance)
    # P(S >= missing) >= chance  <=>  mean - z * sd >= missing - 0.5 (continuity).
    enough = np.flatnonzero(mean - z * sd >= missing - 0.5)
    return int(enough[0]) + 1 if enough.size else int(p.size)


def _normal_quantile(q: float) -> float:
    from statistics import NormalDist

    return float(NormalDist().inv_cdf(q))


def _fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 25) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; weights with the bias last."""
    xb = np.hstack([x, np.ones((x.shape[0], 1), dtype=np.float64)])
    w = np.zeros(xb.shape[1])
    ridge = l2 * np.eye(xb.shape[1])
    ridge[-1, -1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(xb @ w, -30, 30)))
        grad = xb.T @ (p - y) + ridge @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + ridge
        step = np.linalg.solve(hess + 1e-9 * np.eye(hess.shape[0]), grad)
        w -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return w


def _probe_p(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    z = np.hstack([x, np.ones((x.shape[0], 1))]) @ w
    return np.asarray(1 / (1 + np.exp(-np.clip(z, -30, 30))))


def _features(vectors: dict[int, np.ndarray], ids: list[int], scores: np.ndarray) -> np.ndarray:
    emb = np.stack([vectors[i] for i in ids]).astype(np.float64)
    return np.hstack([emb, scores.reshape(-1, 1)])


def _better_half(order: np.ndarray, y: np.ndarray) -> float:
    top = order[: max(1, len(order) // 2)]
    return float(y[top].mean())


def _heldout(
    x: np.ndarray, y: np.ndarray, scores: np.ndarray, folds: int = 5
) -> tuple[float, float]:
    """Precision of the better half of held-back verdicts: by prompt score, by the probe."""
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(y)) % folds
    probe = np.empty(len(y))
    for k in range(folds):
        test = fold == k
        train = ~test
        if test.sum() == 0 or len(set(y[train].tolist())) < 2:
            probe[test] = scores[test]
            continue
        probe[test] = _probe_p(_fit_probe(x[train], y[train]), x[test])
    return _better_half(np.argsort(-scores), y), _better_half(np.argsort(-probe), y)


def plan_round(
    ledger: Ledger,
    results: CrowdResults,
    *,
    quota: int,
    settings: RoundSettings,
    budget_left: Decimal | None = None,
    cost_per_item: Decimal = Decimal("0"),
) -> RoundPlan:
    """Decide the next round: stop each labeled cell or choose its next candidates.

    Args:
        ledger: The open ledger (candidates ranked, the last round reviewed).
        results: The crowd's verdicts so far (:func:`turk.dataset.results.crowd_results`).
        quota: Accepted images wanted per cell (``images_per_class``).
        settings: The round settings.
        budget_left: What the budget leaves on the target, or None for no budget.
        cost_per_item: Expected cost of verifying one candidate (fees included).

    Returns:
        The :class:`RoundPlan` (nothing is written; see :func:`record_round`).
    """
    number = latest_round(ledger) + 1
    rows = candidate_rows(ledger, role="positive", pool=True)
    items = results.items
    # What fills a quota is an accepted image: the probe learns acceptance, and a "yes"
    # too uncertain to accept counts against its candidate like a "no".
    accepted_of = {
        (str(c), int(i)): bool(a)
        for c, i, a in zip(items["concept"], items["image_id"], items["accepted"], strict=True)
    }
    plan = RoundPlan(number, [])
    vectors: dict[int, np.ndarray] = {}
    if settings.rerank and number <= settings.max_rounds:
        vectors = candidate_vectors(ledger, rows["image_id"].tolist())
    p_by_item: dict[tuple[str, int], float] = {}
    concept_rate: dict[str, float] = {}
    for concept, part in rows.groupby("concept", sort=True):
        sent = part[part["round"].notna()]
        labels = [accepted_of.get((str(concept), int(i))) for i in sent["image_id"]]
        known = [
            (i, s, v)
            for i, s, v in zip(sent["image_id"], sent["score"], labels, strict=True)
            if v is not None
        ]
        ys = np.asarray([v for _, _, v in known], dtype=np.float64)
        concept_rate[str(concept)] = float(ys.mean()) if len(ys) else 0.5
        enough = (
            settings.rerank
            and len(ys) >= 2 * settings.min_labels
            and ys.sum() >= settings.min_labels
            and (len(ys) - ys.sum()) >= settings.min_labels
            and all(int(i) in vectors for i, _, _ in known)
        )
        if not enough:
            continue
        ids = [int(i) for i, _, _ in known]
        scores = np.asarray([float(s) for _, s, _ in known])
        mu, sd = float(scores.mean()), float(scores.std() or 1.0)
        x = _features(vectors, ids, (scores - mu) / sd)
        plan.heldout[str(concept)] = by_prompt, by_probe = _heldout(x, ys, scores)
        if by_probe < by_prompt:
            continue  # measured on held-back verdicts: the prompt order is better here
        w = _fit_probe(x, ys)
        pool = part[part["round"].isna()]
        pool = pool[pool["image_id"].isin(list(vectors))]
        if pool.empty:
            continue
        pool_ids = [int(i) for i in pool["image_id"]]
        px = _features(vectors, pool_ids, (pool["score"].to_numpy() - mu) / sd)
        for i, p in zip(pool_ids, _probe_p(w, px), strict=True):
            p_by_item[(str(concept), i)] = float(p)
    labeled = bucket_ids(ledger, reserved=False)
    cells = _cells(rows)
    spend_left = budget_left
    for concept in sorted(rows["concept"].unique().tolist()):
        for bucket in labeled:
            part = cells.get((concept, bucket), rows.iloc[0:0])
            sent = part[part["round"].notna()]
            pool = part[part["round"].isna()].sort_values(["rank", "image_id"])
            in_cell = [accepted_of.get((concept, int(i))) for i in sent["image_id"]]
            accepted = sum(1 for v in in_cell if v)
            verified = sum(1 for v in in_cell if v is not None)
            cell = CellPlan(
                concept, int(bucket), accepted, verified, max(0, quota - accepted), len(pool)
            )
            plan.cells.append(cell)
            if cell.missing == 0:
                cell.stop = "quota"
                continue
            if pool.empty:
                cell.stop = "exhausted"
                continue
            ids = [int(i) for i in pool["image_id"]]
            if all((concept, i) in p_by_item for i in ids):
                cell.method = "rerank"
                p = np.asarray([p_by_item[(concept, i)] for i in ids])
                order = np.argsort(-p, kind="stable")
                ids, p = [ids[k] for k in order], p[order]
            else:
                last = sent[sent["round"] == sent["round"].max()] if not sent.empty else sent
                last_known = [accepted_of.get((concept, int(i))) for i in last["image_id"]]
                right = sum(1 for v in last_known if v)
                seen = sum(1 for v in last_known if v is not None)
                prior = concept_rate.get(concept, 0.5) * settings.prior_strength
                estimate = (prior + right) / (settings.prior_strength + seen)
                p = np.full(len(ids), estimate)
            k = _fill_size(p, cell.missing, settings.fill_chance)
            cell.precision = float(p[:k].mean()) if k else float(p[0])
            if number > settings.max_rounds:
                cell.stop = "rounds"
                continue
            if cell.precision < settings.min_yield:
                cell.stop = "yield"
                continue
            cost = cost_per_item * k
            if spend_left is not None and cost > spend_left:
                cell.stop = "budget"
                continue
            if spend_left is not None:
                spend_left -= cost
            cell.picks = ids[:k]
            cell.expected = float(p[:k].sum())
    return plan


def record_round(ledger: Ledger, plan: RoundPlan) -> int:
    """Write the round's decisions and mark its candidates, in one transaction.

    Args:
        ledger: The open ledger.
        plan: From :func:`plan_round`.

    Returns:
        Candidates chosen.
    """
    now = utc_now()
    with ledger.conn:
        for cell in plan.cells:
            prompt, rerank = plan.heldout.get(cell.concept, (None, None))
            ledger.conn.execute(
                "INSERT OR REPLACE INTO rounds (round, concept, bucket, accepted, verified, "
                "missing, pool_left, sent, expected, precision, method, stop, heldout_prompt, "
                "heldout_rerank, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    plan.number,
                    cell.concept,
                    cell.bucket,
                    cell.accepted,
                    cell.verified,
                    cell.missing,
                    cell.pool_left,
                    len(cell.picks),
                    cell.expected,
                    None if math.isnan(cell.precision) else cell.precision,
                    cell.method,
                    cell.stop,
                    prompt,
                    rerank,
                    now,
                ),
            )
        picks = [(c.concept, c.bucket, i) for c in plan.cells for i in c.picks]
        send_in_round(ledger, plan.number, picks)
    return plan.picks


def stop_reasons(ledger: Ledger) -> dict[tuple[str, int], str]:
    """Each cell's latest stop reason (a key of :data:`STOP_REASONS`), where it stopped.

    Args:
        ledger: The open ledger.

    Returns:
        ``{(concept, bucket): reason}``.
    """
    found: dict[tuple[str, int], str] = {}
    for concept, bucket, stop in ledger.conn.execute(
        "SELECT concept, bucket, stop FROM rounds r WHERE round = (SELECT MAX(round) FROM "
        "rounds s WHERE s.concept = r.concept AND s.bucket = r.bucket)"
    ):
        if stop is not None:
            found[(str(concept), int(bucket))] = str(stop)
    return found


def round_table(ledger: Ledger, results: CrowdResults) -> pd.DataFrame:
    """One row per round: cells sent to, candidates sent, accepted, yield, re-ranking.

    Args:
        ledger: The open ledger.
        results: The crowd's verdicts.

    Returns:
        ``round, cells, sent, verified, accepted, yield, expected, reranked_cells,
        heldout_prompt, heldout_rerank`` (held-back precision of the better half of the
        verdicts, ordered by prompt score and by the re-ranker, averaged over concepts).
    """
    rows = candidate_rows(ledger, role="positive")
    items = results.items.set_index(["concept", "image_id"])
    decisions = pd.read_sql_query(
        "SELECT round, concept, bucket, sent, expected, method, heldout_prompt, heldout_rerank "
        "FROM rounds",
        ledger.conn,
    )
    out = []
    for number in sorted(int(r) for r in rows["round"].unique()):
        part = rows[rows["round"] == number]
        keys = list(zip(part["concept"], part["image_id"], strict=True))
        found = items.reindex(keys)
        plan = decisions[decisions["round"] == number]
        out.append(
            {
                "round": number,
                "cells": int(part.groupby(["concept", "bucket"]).ngroups),
                "sent": len(part),
                "verified": int(found["label"].notna().sum()),
                "accepted": int(found["accepted"].fillna(False).astype(bool).sum()),
                "expected": float(plan["expected"].sum()) if not plan.empty else float("nan"),
                "reranked_cells": int(((plan["method"] == "rerank") & (plan["sent"] > 0)).sum()),
                "heldout_prompt": float(plan["heldout_prompt"].mean())
                if plan["heldout_prompt"].notna().any()
                else float("nan"),
                "heldout_rerank": float(plan["heldout_rerank"].mean())
                if plan["heldout_rerank"].notna().any()
                else float("nan"),
            }
        )
    table = pd.DataFrame(out)
    if not table.empty:
        table["yield"] = table["accepted"] / table["verified"].where(table["verified"] > 0)
    return table


def cell_table(ledger: Ledger, results: CrowdResults, *, quota: int) -> pd.DataFrame:
    """One row per labeled cell: rounds, sent, answers, dollars, accepted and the stop.

    Answers are those paid for on the cell's HITs (gold included); dollars what those
    HITs committed, fees included (:func:`turk.crowd.spend.cell_money`).

    Args:
        ledger: The open ledger.
        results: The crowd's verdicts.
        quota: Accepted images wanted per cell.

    Returns:
        ``concept, bucket, rounds, sent, answers, dollars, accepted, overshoot,
        answers_per_accepted, dollars_per_accepted, precision_at_depth`` (the share
        accepted of the verified candidates by band of ``quota`` ranks in the prompt's
        ranking), ``stop``, ``workforce`` (who verified it: :func:`turk.crowd.backend.
        workforce`) and ``language`` (the language of its HITs' pages, e.g. ``zh-Hans``,
        or each with its HIT count when they differ).
    """
    rows = candidate_rows(ledger, role="positive")
    accepted = results.items[results.items["accepted"]].groupby(["concept", "bucket"]).size()
    verdicts = results.items.set_index(["concept", "image_id"])["accepted"]
    stops = stop_reasons(ledger)
    answers_paid = answers_by_cell(ledger, results.target)
    committed = cell_money(ledger, results.target)
    cells = _cells(rows)
    languages = languages_by_cell(ledger, results.target)
    verified_by = workforce(results.target)
    out = []
    for concept in sorted(rows["concept"].unique().tolist()):
        for bucket in bucket_ids(ledger, reserved=False):
            key = (str(concept), int(bucket))
            part = cells.get(key, rows.iloc[0:0])
            got = int(accepted.get(key, 0))
            answers = answers_paid.get(key, 0)
            dollars = committed.get(key, Decimal("0.00"))
            stop = stops.get(key)
            out.append(
                {
                    "concept": concept,
                    "bucket": int(bucket),
                    "rounds": int(part["round"].nunique()),
                    "sent": len(part),
                    "answers": answers,
                    "dollars": dollars,
                    "accepted": got,
                    "overshoot": max(0, got - quota),
                    "answers_per_accepted": answers / got if got else float("nan"),
                    "dollars_per_accepted": (dollars / got).quantize(Decimal("0.0001"))
                    if got
                    else None,
                    "precision_at_depth": _depth_curve(part, verdicts, quota),
                    "stop": STOP_REASONS.get(stop, stop)
                    if stop
                    else (STOP_REASONS["quota"] if got >= quota else ""),
                    "workforce": verified_by if answers else "",
                    "language": _languages(languages.get(key, {})),
                }
            )
    return pd.DataFrame(out)


def _depth_curve(cell: pd.DataFrame, verdicts: pd.Series, band: int) -> str:
    """The share accepted of a cell's verified candidates, by band of ``band`` ranks."""
    keys = list(zip(cell["concept"], cell["image_id"], strict=True))
    found = verdicts.reindex(keys).to_numpy()
    ranks = cell["rank"].to_numpy()
    parts = []
    for start in range(0, int(ranks.max()) + 1 if len(ranks) else 0, max(1, band)):
        inside = (ranks >= start) & (ranks < start + band) & pd.notna(found)
        if inside.any():
            share = float(np.mean(found[inside].astype(bool)))
            parts.append(f"{start}-{start + band - 1}: {share:.0%} of {int(inside.sum())}")
    return "; ".join(parts)


def _languages(counts: dict[str, int]) -> str:
    """A cell's HIT languages: the one tag, or each with its HIT count when mixed."""
    if len(counts) <= 1:
        return next(iter(counts), "")
    return ", ".join(f"{tag} ({n} HITs)" for tag, n in sorted(counts.items()))


def cells_now(ledger: Ledger, *, target: str | None = None) -> pd.DataFrame:
    """Where every cell stands, from the ledger alone (``turk status --cells``).

    The quota is the one the last ``turk rank`` ran with; answers are aggregated with
    the default model and acceptance rule.

    Args:
        ledger: The open ledger.
        target: The crowd target, or None for the only one with answers.

    Returns:
        The :func:`cell_table` of the cells.

    Raises:
        StageError: Nothing ranked or answered yet.
    """
    from turk.dataset.results import crowd_results
    from turk.errors import StageError

    last = ledger.last_run("rank")
    if last is None:
        raise StageError(f"{ledger.path}: nothing ranked yet; run 'turk rank' first")
    quota = int(last["settings"]["settings"]["images_per_class"])
    return cell_table(ledger, crowd_results(ledger, target=target), quota=quota)


def format_cell_table(cells: pd.DataFrame, *, paid: bool = True) -> str:
    """Render :func:`cell_table` as aligned text, with a total row.

    Args:
        cells: The cell table.
        paid: Whether its target pays workers through turk; when not, the money
            columns say so instead of showing amounts.

    Returns:
        The table, without a final newline.
    """
    from turk.money import format_usd as _usd
    from turk.money import round_cents
    from turk.text import format_table

    def format_usd(amount: Decimal) -> str:
        return _usd(amount) if paid else "not paid"

    header = (
        "concept",
        "bucket",
        "rounds",
        "sent",
        "answers",
        "dollars",
        "accepted",
        "answers/acc",
        "$/acc",
        "stopped because",
    )

    def per(value: float, got: int) -> str:
        return f"{value / got:.1f}" if got else "-"

    rows = []
    for r in cells.to_dict(orient="records"):
        dollars, got = Decimal(r["dollars"]), int(r["accepted"])
        rows.append(
            (
                str(r["concept"]),
                str(r["bucket"]),
                str(r["rounds"]),
                str(r["sent"]),
                str(r["answers"]),
                format_usd(dollars),
                str(got),
                per(float(r["answers"]), got),
                format_usd(round_cents(dollars / got)) if got else "-",
                str(r["stop"]),
            )
        )
    got = int(cells["accepted"].sum()) if not cells.empty else 0
    dollars = sum(cells["dollars"], Decimal("0.00")) if not cells.empty else Decimal("0.00")
    answers = int(cells["answers"].sum()) if not cells.empty else 0
    rows.append(
        (
            "total",
            "",
            str(int(cells["rounds"].max()) if not cells.empty else 0),
            str(int(cells["sent"].sum()) if not cells.empty else 0),
            str(answers),
            format_usd(dollars),
            str(got),
            per(answers, got),
            format_usd(round_cents(dollars / got)) if got else "-",
            "",
        )
    )
    return format_table(header, rows, right=set(range(1, 9)))
