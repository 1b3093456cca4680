"""One module per method: pure DataFrame → DataFrame functions and their SQL (issue 13)."""
