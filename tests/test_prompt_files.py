from pathlib import Path

import pytest

from writing_rl.prompts import TemplateError, load_template
from writing_rl.prompts.template import BUILTIN_DIR


@pytest.mark.parametrize("name", ["pairwise", "pairwise_criteria", "genrm"])
def test_builtin_templates_load(name: str) -> None:
    template = load_template(name)
    assert {"prompt", "response_a", "response_b"} <= template.placeholders
    assert template.grammar


def test_render_substitutes_once() -> None:
    messages = load_template("pairwise").render(prompt="Write {response_b}", response_a="x {prompt}",
                                                response_b="y")
    user = messages[-1]["content"]
    assert "Write {response_b}" in user and "x {prompt}" in user
    assert messages[0]["role"] == "system"


def test_render_missing_value_is_an_error() -> None:
    with pytest.raises(TemplateError, match="criteria"):
        load_template("pairwise_criteria").render(prompt="p", response_a="a", response_b="b")


def test_genrm_keeps_boxed_braces() -> None:
    user = load_template("genrm").render(prompt="p", response_a="a", response_b="b")[-1]["content"]
    assert r"\boxed{score_a, score_b}" in user


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "judge.toml"
    path.write_text(text)
    return path


GOOD_USER = 'user = """{prompt} {response_a} {response_b} answer [[A]], [[B]] or [[C]]"""\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('output = "verdict"\nuser = """{prompt} {response_a} answer [[A]] [[B]] [[C]]"""\n',
         r"missing placeholder\(s\) \['\{response_b\}'\]"),
        ('output = "verdict"\nuser = """{prompt} {respones_a} {response_a} {response_b} [[A]] [[B]] [[C]]"""\n',
         r"unknown placeholder\(s\) \['\{respones_a\}'\]"),
        ('output = "verdict"\nuser = """{prompt} {response_a} {response_b} pick A or B"""\n',
         r"never tells the judge to write \['\[\[A\]\]'"),
        ('output = "scores"\n' + GOOD_USER, r"never tells the judge to write \['\\\\boxed\{'\]"),
        ('output = "stars"\n' + GOOD_USER, "must be one of"),
        (GOOD_USER, "missing or empty `output`"),
        ('output = "verdict"\nuser = """unterminated\n', "not valid TOML"),
        ('output = "verdict"\nprompt = "x"\n' + GOOD_USER, r"unknown key\(s\) \['prompt'\]"),
    ],
)
def test_broken_template_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TemplateError, match=message) as info:
        load_template(path)
    assert str(path) in str(info.value)


def test_expected_output_is_enforced() -> None:
    with pytest.raises(TemplateError, match="needs 'scores'"):
        load_template("pairwise", expect_output="scores")


def test_unknown_builtin_lists_the_builtins() -> None:
    with pytest.raises(TemplateError, match="genrm"):
        load_template("no_such_template")


def test_builtin_dir_has_only_valid_templates() -> None:
    for path in BUILTIN_DIR.glob("*.toml"):
        load_template(path)
