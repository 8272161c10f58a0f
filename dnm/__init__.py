"""dnm-archive: a research and evidence archive of dark-web marketplaces."""

__version__ = "0.1.0"
