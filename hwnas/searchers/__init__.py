"""Searchers with an ask/tell loop; objectives are passed in, never imported from profilers."""
