import pytest

from writing_rl.judge.parsing import Verdict, parse_scores, parse_verdict, verdict_from_scores


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A is stronger. [[A]]", Verdict.A),
        ("[[B]]", Verdict.B),
        ("They are equal. [[C]]", Verdict.TIE),
        # several verdicts: the last one counts (the judge changed its mind)
        ("First I thought [[A]] but on reflection [[B]]", Verdict.B),
        # verdict tokens inside quoted text are the responses' words, not the judge's
        ('Final verdict: [[B]]. Note that response A literally wrote "[[A]]".', Verdict.B),
        ("Final verdict: [[A]]. Response B ends with “[[B]]”, which is odd.", Verdict.A),
        ("[[B]]\n```\nexample output: [[A]]\n```", Verdict.B),
        ("Verdict [[A]]; the template shows `[[C]]` as the tie token", Verdict.A),
        # reasoning blocks do not count, even when cut off
        ("<think>maybe [[A]]</think> Final: [[B]]", Verdict.B),
        ("Final: [[B]] <think>unfinished [[A]]", Verdict.B),
        # not well-formed: nothing is guessed
        ("[[a]]", None),
        ("[A]", None),
        ("Assistant A is better.", None),
        ("A", None),
        ("[[D]]", None),
        ("[[ A ]]", None),
        ("", None),
    ],
)
def test_parse_verdict(text: str, expected: Verdict | None) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"Weighted: \boxed{7.5, 6}", (7.5, 6.0)),
        (r"\boxed{ 8 ,9.25 }", (8.0, 9.25)),
        (r"draft \boxed{1, 2} final \boxed{9, 3}", (9.0, 3.0)),
        # out of range: not well-formed, skipped
        (r"\boxed{11, 3}", None),
        (r"\boxed{-1, 3}", None),
        (r"\boxed{6, 4} then \boxed{12, 3}", (6.0, 4.0)),
        (r"\boxed{7}", None),
        (r"\boxed{seven, 3}", None),
        (r'The response says "\boxed{9, 1}". My scores: \boxed{4, 5}', (4.0, 5.0)),
        (r'My scores: \boxed{4, 5}. The response says "\boxed{9, 1}"', (4.0, 5.0)),
        ("scores 7 and 6", None),
    ],
)
def test_parse_scores(text: str, expected: tuple[float, float] | None) -> None:
    assert parse_scores(text) == expected


def test_verdict_from_scores() -> None:
    assert verdict_from_scores((7.0, 6.0)) == Verdict.A
    assert verdict_from_scores((6.0, 7.0)) == Verdict.B
    assert verdict_from_scores((6.0, 6.0)) == Verdict.TIE
    assert verdict_from_scores(None) is None
