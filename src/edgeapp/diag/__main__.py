"""`python -m edgeapp.diag`: what the board's edgeapp-diag wrapper runs."""
import sys

from edgeapp.diag.cli import main

# Guarded: a module run with -m may be imported again by tools that start child interpreters.
if __name__ == "__main__":
    sys.exit(main())
