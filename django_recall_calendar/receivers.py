"""Signal receivers wired in AppConfig.ready()."""
