"""Prompt files and judge-output parsing under bad input (findings C6, M4, M14, M16, M18 and the
literal-`<think>` cosmetic item of notes/bad-input-findings.md): real files through the loader and CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from writing_rl.cli import main
from writing_rl.judge.parsing import Verdict, parse_scores, parse_verdict
from writing_rl.prompts import TemplateError, load_template
from writing_rl.prompts.grammar import GrammarError, check_gbnf
from writing_rl.prompts.template import BUILTIN_DIR

PAIRWISE = (BUILTIN_DIR / "pairwise.toml").read_text(encoding="utf-8")
BUILTIN_GRAMMAR = '''root ::= reason "\\nVerdict: [[" ("A" | "B" | "C") "]]"
reason ::= [^\\n\\[\\]]{0,300}'''


def with_grammar(tmp_path: Path, grammar: str) -> Path:
    assert BUILTIN_GRAMMAR in PAIRWISE
    path = tmp_path / "bad_grammar.toml"
    path.write_text(PAIRWISE.replace(BUILTIN_GRAMMAR, grammar), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("grammar", "problem"),
    [
        ('root ::= reazon ((( "[[A]]"', "line 1, column 19: `(` is never closed with `)`"),
        ('root ::= reason "[[A]]"\nreason ::= [^\\n', "line 2, column 12: character class is never closed"),
        ('root ::= "[[A]]', "line 1, column 10: string literal is never closed"),
        ('root ::= reason "[[A]]"', "rule 'reason' is used but never defined"),
        ('verdict ::= "[[A]]"', "no `root` rule"),
        ('root ::= * "[[A]]"', "'*' must follow an item it repeats"),
        ('root ::= "a"{3,1}', "a repetition is written {m}, {m,} or {m,n} with m <= n"),
        ('root ::= "\\q"', "unknown escape \\q"),
        ('root ::= my_reason\nmy_reason ::= "a"', "rule names are letters, digits and `-`"),
        ('root ::= "a"\n  | "b"', "line 2, column 3: expecting a rule name, found '|'"),
    ],
)
def test_M4_invalid_grammar_refused_at_load_naming_file_and_problem(tmp_path: Path, grammar: str,
                                                                    problem: str) -> None:
    path = with_grammar(tmp_path, grammar)
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: `grammar` is not valid GBNF: grammar ") and problem in message


@pytest.mark.parametrize(
    "grammar",
    [
        BUILTIN_GRAMMAR,
        'root ::= ("a" |\n  "b")+ [^\\n]{0,3} . # a comment\n',
        'root ::= item{2} item{1,} item?\nitem ::= [a-z0-9] | "\\x41" | "\\u00e9"',
        'root ::= "a" |\n  "b"',
    ],
)
def test_M4_valid_grammars_pass(grammar: str) -> None:
    check_gbnf(grammar)


def test_M4_builtin_grammars_pass() -> None:
    for path in BUILTIN_DIR.glob("*.toml"):
        assert load_template(path).grammar


def test_M4_empty_grammar_is_refused() -> None:
    with pytest.raises(GrammarError, match="the grammar is empty"):
        check_gbnf("   # only a comment\n")


def test_M18_doubled_braces_are_literal(tmp_path: Path) -> None:
    path = tmp_path / "braces.toml"
    path.write_text('output = "verdict"\nuser = """Answer in the form {{winner}}: A or B. JSON like '
                    '{"winner": "A"} and {{prompt}} stay as written; \\\\boxed{a, b} too.\n'
                    '{prompt} {response_a} {response_b} [[A]] [[B]] [[C]] {{{prompt}}}"""\n', encoding="utf-8")
    template = load_template(path)
    assert template.placeholders == {"prompt", "response_a", "response_b"}
    user = template.render(prompt="P", response_a="x {{y}}", response_b="z")[-1]["content"]
    assert user.startswith('Answer in the form {winner}: A or B. JSON like {"winner": "A"} and {prompt} stay')
    assert "\\boxed{a, b} too." in user
    assert user.endswith("P x {{y}} z [[A]] [[B]] [[C]] {P}")


def test_M18_builtin_genrm_keeps_boxed_and_single_braces() -> None:
    user = load_template("genrm").render(prompt="p", response_a="a", response_b="b")[-1]["content"]
    assert r"\boxed{score_a, score_b}" in user


def test_C6_template_is_a_directory_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["judge", "try", "--prompt", "p", "--a", "a", "--b", "b", "--template", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"writing-rl: error: {tmp_path}: is a directory; give a .toml prompt file or a built-in name\n"


def test_M14_M16_template_encodings(tmp_path: Path) -> None:
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + PAIRWISE.encode("utf-8"))
    assert load_template(bom).output == "verdict"
    latin = tmp_path / "latin.toml"
    latin.write_bytes(PAIRWISE.replace("impartially", "impartially, caf\u00e9").encode("latin-1"))
    with pytest.raises(TemplateError, match=r"latin\.toml, line 7: not valid UTF-8 \(byte 0xe9 at column 73\); "
                                            "re-save the file as UTF-8"):
        load_template(latin)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Response A literally writes <think> as a tag, which is odd. [[B]]", Verdict.B),
        ("Final: [[B]] <think>unfinished [[A]]", Verdict.B),
        ("<think>cut off before deciding [[A]]", None),
        ("Response B prints <think> verbatim. Scores: \\boxed{7, 3}", None),
    ],
)
def test_COSMETIC_literal_think_after_the_answer_starts(text: str, expected: Verdict | None) -> None:
    assert parse_verdict(text) == expected


def test_COSMETIC_literal_think_in_scores() -> None:
    assert parse_scores("Response B prints <think> verbatim. Scores: \\boxed{7, 3}") == (7.0, 3.0)
    assert parse_scores("<think>draft \\boxed{7, 3}") is None
