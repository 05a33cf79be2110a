"""Scripts run from the repository's root with `python -m scripts.<name>`."""
