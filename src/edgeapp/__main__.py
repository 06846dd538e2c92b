import sys

from edgeapp.cli import main

# Guarded: a module run with -m may be imported again by tools that start child interpreters.
if __name__ == "__main__":
    sys.exit(main())
