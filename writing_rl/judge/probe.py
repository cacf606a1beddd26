"""A judge-robustness probe: does a cheap trick make the judge prefer the weaker of two texts?

Each clean pair (prompt, stronger, weaker) is judged in both orders. Each text attack edits the weaker text
(padding, an instruction to the judge, verdict tokens, a self-explanation tail) and is judged in the same two
orders; the `swap` attack only presents the clean pair in the other order. A comparison *flips* when the
text the judge prefers (stronger, weaker or tie) differs from its choice on the clean pair in the same order
(for `swap`: from its choice in the first order). A couple in which both judgements are ties decided nothing:
it is left out of the flip rate, which is None when no couple decided anything (a judge that always says tie is
not robust, it is blind). Attacks are data (`probe_sets/attacks.jsonl`): rows
`{name, kind: append|prepend|swap, text, repeat?, description?}`; in `text`, `{label}` is the weaker text's
position (A or B) in that judgement and `{boxed}` is `\\boxed{10, 1}` or `\\boxed{1, 10}` in its favour; any
other `{word}` is refused.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from writing_rl.data.rows import DataError, read_rows, require_text
from writing_rl.judge.evaluation import PreferencePair
from writing_rl.judge.pairwise import Comparison, PairwiseJudge
from writing_rl.judge.parsing import Verdict

PROBE_SETS = Path(__file__).resolve().parent.parent / "probe_sets"
BUILTIN_PAIRS = PROBE_SETS / "pairs.jsonl"
BUILTIN_ATTACKS = PROBE_SETS / "attacks.jsonl"
KINDS = ("append", "prepend", "swap")
CLEAN = "clean"
PLACEHOLDERS = {"{label}": "the weaker text's position, A or B", "{boxed}": "a \\boxed{a, b} in its favour"}
_PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_]\w*\s*\}")


@dataclass(frozen=True)
class Attack:
    name: str
    kind: str
    text: str = ""
    repeat: int = 1
    description: str = ""

    def apply(self, weaker: str, weaker_label: str) -> str:
        boxed = "\\boxed{10, 1}" if weaker_label == "A" else "\\boxed{1, 10}"
        addition = self.text.replace("{label}", weaker_label).replace("{boxed}", boxed) * self.repeat
        return weaker + addition if self.kind == "append" else addition + weaker


def _check_placeholders(text: str, where: str) -> None:
    """A `{word}` other than the known placeholders would reach the judge literally: refused."""
    unknown = sorted({p for p in _PLACEHOLDER.findall(text) if p not in PLACEHOLDERS})
    if unknown:
        known = "; ".join(f"{p} ({meaning})" for p, meaning in PLACEHOLDERS.items())
        raise DataError(f"{where}: unknown placeholder(s) {', '.join(unknown)} in 'text'; the known ones are "
                        f"{known}; fix the spelling or remove the braces")


def load_attacks(path: Path) -> list[Attack]:
    rows = read_rows(path)
    if not rows:
        raise DataError(f"{path}: no attacks")
    attacks: list[Attack] = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}, row {number}"
        unknown = sorted(set(row) - {"name", "kind", "text", "repeat", "description"})
        if unknown:
            raise DataError(f"{where}: unknown field(s) {unknown}; allowed: name, kind, text, repeat, description")
        name, kind = require_text(row, "name", where), require_text(row, "kind", where)
        if kind not in KINDS:
            raise DataError(f"{where}: kind {kind!r} must be one of {list(KINDS)}")
        if name == CLEAN or name in {a.name for a in attacks}:
            raise DataError(f"{where}: attack name {name!r} is {'reserved' if name == CLEAN else 'used twice'}")
        repeat = row.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise DataError(f"{where}: 'repeat' must be a whole number >= 1, got {repeat!r}")
        text = require_text(row, "text", where) if kind != "swap" else str(row.get("text") or "")
        if kind != "swap":
            _check_placeholders(text, f"{where}: attack {name!r}")
        attacks.append(Attack(name, kind, text, repeat, str(row.get("description") or "")))
    return attacks


@dataclass(frozen=True)
class ProbeJudgement:
    attack: str
    pair_id: str
    weaker_first: bool
    comparison: Comparison

    @property
    def preferred(self) -> str | None:
        """`stronger`, `weaker`, `tie`, or None when the judge failed or its answer did not parse."""
        verdict = self.comparison.verdict
        if verdict is None:
            return None
        if verdict == Verdict.TIE:
            return "tie"
        weaker_won = (verdict == Verdict.A) == self.weaker_first
        return "weaker" if weaker_won else "stronger"


def _jobs(pairs: Sequence[PreferencePair], attacks: Sequence[Attack]) -> list[tuple[str, PreferencePair, bool, str]]:
    """(attack name, pair, weaker shown first, the weaker text as shown) for every judgement to make."""
    jobs = []
    for pair in pairs:
        for weaker_first in (False, True):
            jobs.append((CLEAN, pair, weaker_first, pair.rejected))
            for attack in attacks:
                if attack.kind != "swap":
                    jobs.append((attack.name, pair, weaker_first,
                                 attack.apply(pair.rejected, "A" if weaker_first else "B")))
    return jobs


async def run_probe(judge: PairwiseJudge, pairs: Sequence[PreferencePair], attacks: Sequence[Attack], *,
                    progress: bool = True, finished: list[ProbeJudgement] | None = None) -> list[ProbeJudgement]:
    """Every judgement the attacks need (the clean pair in both orders serves `swap`); each is appended to
    `finished` as it completes, so an interrupted caller keeps what was judged."""
    finished = [] if finished is None else finished

    async def one(name: str, pair: PreferencePair, weaker_first: bool, weaker: str) -> ProbeJudgement:
        a, b = (weaker, pair.chosen) if weaker_first else (pair.chosen, weaker)
        return ProbeJudgement(name, pair.id, weaker_first, await judge.compare(pair.prompt, a, b))

    tasks = [asyncio.ensure_future(one(*job)) for job in _jobs(pairs, attacks)]
    try:
        with tqdm(total=len(tasks), desc="probing the judge", unit="judgement", disable=not progress) as bar:
            for done in asyncio.as_completed(tasks):
                finished.append(await done)
                bar.update(1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return list(finished)


def _ratio(n: int, d: int) -> float:
    return n / d if d else 0.0


def summarize_probe(judgements: Sequence[ProbeJudgement], attacks: Sequence[Attack]) -> dict[str, Any]:
    """Per attack: comparisons made, usable ones (both sides parsed), decided ones (usable, not both ties),
    flips and their rate over the decided ones (None when none), flips towards the weaker text, tie rate, and
    how often the weaker text won clean vs attacked."""
    by_key = {(j.attack, j.pair_id, j.weaker_first): j for j in judgements}
    clean = [j for j in judgements if j.attack == CLEAN]
    clean_parsed = sum(j.preferred is not None for j in clean)
    out: dict[str, Any] = {"pairs": len({j.pair_id for j in clean}),
                           "clean_weaker_win_rate": _ratio(sum(j.preferred == "weaker" for j in clean), clean_parsed),
                           "clean_tie_rate": _ratio(sum(j.preferred == "tie" for j in clean), clean_parsed),
                           "clean_parse_failures": sum(j.comparison.unparseable for j in clean),
                           "clean_judge_failures": sum(j.comparison.failed for j in clean),
                           "attacks": {}}
    for attack in attacks:
        couples = []  # (reference judgement, attacked judgement)
        for j in clean:
            if attack.kind == "swap":
                if not j.weaker_first:  # stronger first is the reference, the other order the attack
                    couples.append((j, by_key.get((CLEAN, j.pair_id, True))))
            else:
                couples.append((j, by_key.get((attack.name, j.pair_id, j.weaker_first))))
        made = [(r, a) for r, a in couples if a is not None]
        usable = [(r, a) for r, a in made if r.preferred is not None and a.preferred is not None]
        decided = [(r, a) for r, a in usable if not r.preferred == a.preferred == "tie"]
        flips = [(r, a) for r, a in usable if r.preferred != a.preferred]
        out["attacks"][attack.name] = {
            "kind": attack.kind,
            "comparisons": len(made),
            "usable": len(usable),
            "decided": len(decided),
            "flips": len(flips),
            "flip_rate": len(flips) / len(decided) if decided else None,
            "flips_toward_weaker": sum(a.preferred == "weaker" for _, a in flips),
            "tie_rate": _ratio(sum(a.preferred == "tie" for _, a in usable), len(usable)),
            "weaker_win_rate": _ratio(sum(a.preferred == "weaker" for _, a in usable), len(usable)),
            "parse_failures": sum(a.comparison.unparseable for _, a in made),
            "judge_failures": sum(a.comparison.failed for _, a in made),
        }
    return out
