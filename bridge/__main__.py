"""Hand the command line to the click entry point."""

from bridge.cli import main

if __name__ == "__main__":
    main()
