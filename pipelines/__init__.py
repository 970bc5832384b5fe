"""Runnable pipelines wired from transforms."""
