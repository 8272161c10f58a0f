"""Downloader middlewares of dnm-archive, one concern per module."""
