"""Built-in suites, task files and Python tasks."""
