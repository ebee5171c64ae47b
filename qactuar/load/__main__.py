"""`python -m qactuar.load [options] URL...`: the same command as `qactuar load`."""

from qactuar.load.cli import main

if __name__ == "__main__":
    main()
