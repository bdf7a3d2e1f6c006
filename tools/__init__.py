"""Scripts run from a checkout (python tools/<name>.py); importable as tools.<name> from the
repository root. setup.py does not install them."""
