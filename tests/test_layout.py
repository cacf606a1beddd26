"""The package's shape: no import circles, no part importing the command layer, and a verl plugin entry that
stays cheap and quiet yet registers everything the moment verl's own lookups need it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from writing_rl.testing.import_graph import import_cycles, import_graph


def test_no_module_pair_imports_each_other() -> None:
    """Checked the way `python -m writing_rl.testing.import_graph` checks it (every import, lazy ones included)."""
    assert import_cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_circle(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub.b import x\n")
    (package / "sub" / "b.py").write_text("def f():\n    import pkg.c\n")
    (package / "c.py").write_text("from pkg import a\nimport os\n")
    (package / "d.py").write_text("import pkg.a\n")
    assert import_cycles(import_graph(package)) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_part_imports_the_command_layer() -> None:
    """The command layer calls the parts; a part (curriculum, selection, ...) never reaches into a command."""
    graph = import_graph()
    reaching = {module: sorted(t for t in targets if t.startswith("writing_rl.cli"))
                for module, targets in graph.items()
                if not module.startswith(("writing_rl.cli", "writing_rl.testing"))}
    assert {m: t for m, t in reaching.items() if t} == {}


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_PLUGINS")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**full_env, **env},
                          timeout=300)


def test_import_verl_with_the_plugin_is_as_quiet_and_light_as_without() -> None:
    """The entry point registers hooks only: `import verl` prints what it prints without our plugin (nothing of
    ours), and loads neither verl's trainer stack nor our managers until verl asks for them."""
    probe = ("import json, sys, verl\n"
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('writing_rl.verl_glue', "
             "'writing_rl.brpo', 'verl.trainer.ppo', 'verl.workers')))))\n")
    with_plugin, without = _python(probe), _python(probe, VERL_USE_EXTERNAL_PLUGINS="none")
    assert with_plugin.returncode == 0, with_plugin.stderr
    assert with_plugin.stderr == without.stderr
    assert json.loads(with_plugin.stdout) == json.loads(without.stdout)  # nothing heavy loaded by us
    assert "writing_rl.plugin" in _python("import sys, verl; print(list(sys.modules))").stdout


def test_verls_own_lookups_find_everything_we_register() -> None:
    """In a fresh process, through the functions verl's trainer and reward loop call."""
    result = _python(
        "import verl\n"
        "from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls\n"
        "from verl.trainer.ppo.core_algos import get_adv_estimator_fn\n"
        "from verl.trainer.ppo.v1 import get_trainer_cls\n"
        "found = [get_reward_manager_cls('brpo'), get_reward_manager_cls('writing_rl'), get_adv_estimator_fn('brpo'),\n"
        "         get_trainer_cls('writing_rl'), get_trainer_cls('genrm_rl')]\n"
        "print([f.__module__ for f in found])\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(["writing_rl.verl_glue.brpo_manager", "writing_rl.verl_glue.writing_rl_manager",
                                         "writing_rl.brpo.estimator", "writing_rl.verl_glue.trainer",
                                         "writing_rl.verl_glue.genrm_trainer"])
