"""Run the command line as ``python -m medagent.cli``."""

from medagent.cli import main

main()
