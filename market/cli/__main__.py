"""`python -m market.cli`: the same as the `gpumarket` command."""

from market.cli import main

main()
