"""`python -m qactuar`: the same as the `qactuar` command."""

from qactuar.cli import main

if __name__ == "__main__":
    main()
