"""Policies (issue 5) and their backbone networks (`nets/`)."""
