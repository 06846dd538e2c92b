"""Developer tools: run from the repository's root as `python -m tools.<name>` (tools.bench,
tools.soak), or as scripts (tools/build_models.py, tools/bundle.py, ...)."""
