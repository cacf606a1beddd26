"""`python -m writing_rl.cli ...`: the `writing-rl` command."""

import sys

from writing_rl.cli.main import main

sys.exit(main())
