"""Runnable examples of eccl integrations (python3 -m eccl.examples.<name>)."""
