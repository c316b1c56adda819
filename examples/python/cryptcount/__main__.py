"""`python -m cryptcount ...`: the same as the `cryptcount` console command."""

from ._cli import main

main()
