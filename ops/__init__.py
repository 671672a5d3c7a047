"""The operator's command line: `python -m ops` (see `python -m ops --help`)."""
